"""What the tests of deploy/'s Kubernetes manifests share: reading a folder's manifests,
and validating them against the Kubernetes schemas (bundled by kubernetes-validate, no
network)."""

from pathlib import Path

import kubernetes_validate
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# The oldest Kubernetes with podFailurePolicy generally available, and the newest known.
VERSIONS = ["1.31.0", kubernetes_validate.utils.latest_version()]


def resources(folder):
    """Every resource of the manifests in folder, with its file's name, files in order."""
    for path in sorted(folder.glob("*.yaml")):
        for resource in yaml.safe_load_all(path.read_text()):
            yield path.name, resource


def validated(folder, version):
    """Validates every resource in folder for Kubernetes version; returns each as file:Kind."""
    names = []
    for name, resource in resources(folder):
        kubernetes_validate.validate(resource, version, strict=True)
        names.append(f"{name}:{resource['kind']}")
    return names
