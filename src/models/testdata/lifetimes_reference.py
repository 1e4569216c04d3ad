# Reference values for fidelis' CLV tests, computed with the `lifetimes` Python package
# (0.11.3, MIT licence; numpy 2.4, pandas 3.1, scipy 1.17, autograd 1.9) in a scratch
# virtual environment. The tests do not run this: they carry the numbers it prints.
#   python3 -m venv /tmp/venv && /tmp/venv/bin/pip install lifetimes==0.11.3
#   /tmp/venv/bin/python reference.py
import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter, GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value, load_dataset
import numdifftools as nd
from scipy.special import betaln, gammaln
from scipy.optimize import minimize

np.set_printoptions(precision=10)
pd.set_option("display.precision", 10)
pd.set_option("display.width", 200)

print("== 1. Standard errors on Fader & Hardie's CDNOW summary (2,357 customers, weeks)")
summary = load_cdnow_summary_data_with_monetary_value()
models = {"bg_nbd": BetaGeoFitter(), "mbg_nbd": ModifiedBetaGeoFitter(), "pareto_nbd": ParetoNBDFitter()}
for name, model in models.items():
    model.fit(summary["frequency"], summary["recency"], summary["T"])
    predicted = model.conditional_expected_number_of_purchases_up_to_time(
        39, summary["frequency"], summary["recency"], summary["T"]
    )
    print(name, "39 weeks ahead: customers 1-3", [repr(v) for v in predicted.head(3)], "all", repr(predicted.sum()))
    if name != "pareto_nbd":
        print(name)
        print(model.summary[["coef", "se(coef)"]].to_string())
        continue
    # lifetimes has no standard errors for Pareto/NBD: its log-likelihood (the same
    # formula, Fader & Hardie's note eq. 18), maximised tightly, and a numerical
    # Hessian of its negative in the natural parameters by numdifftools.
    x, t_x, age = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    nll = lambda p: -ParetoNBDFitter._conditional_log_likelihood(p, x, t_x, age).sum()
    best = minimize(lambda theta: nll(np.exp(theta)), np.log(model.params_.to_numpy()), method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 20000})
    params = np.exp(best.x)
    hessian = nd.Hessian(nll, step=1e-4 * params)(params)
    print(name, "parameters", params.tolist(), "log-likelihood", -nll(params))
    print("   se", np.sqrt(np.diag(np.linalg.inv(hessian))).tolist())
repeat = summary[summary["frequency"] > 0]
gg = GammaGammaFitter()
gg.fit(repeat["frequency"], repeat["monetary_value"])
print("gamma_gamma", len(repeat), "customers")
print(gg.summary[["coef", "se(coef)"]].to_string())

def log_likelihood(name, params, data):
    """The calibration log-likelihood summed over customers, written out: BG/NBD eq. (6)
    of Fader, Hardie & Lee (2005), MBG/NBD of Batislam et al. (2007), and lifetimes'
    Pareto/NBD (Fader & Hardie's note, eq. 18). lifetimes' own `_negative_log_likelihood_`
    is scaled differently, hence by hand."""
    x, t_x, age = (data[c].to_numpy(dtype=float) for c in ("frequency_cal", "recency_cal", "T_cal"))
    if name == "pareto_nbd":
        return ParetoNBDFitter._conditional_log_likelihood(params, x, t_x, age).sum()
    r, alpha, a, b = params
    o = 1.0 if name == "mbg_nbd" else 0.0
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = common + betaln(a, b + x + o) - betaln(a, b) - (r + x) * np.log(alpha + age)
    dropped = common + betaln(a + 1, b + x + o - 1) - betaln(a, b) - (r + x) * np.log(alpha + t_x)
    dropped = np.where((x > 0) | (o > 0), dropped, -np.inf)
    return np.logaddexp(alive, dropped).sum()


print("== 2. The standard CDNOW split: calibration 1997-01-01..1997-09-30, holdout to 1998-06-30 (39 weeks)")
raw = load_dataset("CDNOW_sample.txt", header=None, sep=r"\s+")
raw.columns = ["customer_id", "customer_index", "date", "quantity", "amount"]
raw["date"] = pd.to_datetime(raw["date"].astype(str), format="%Y%m%d")
# Purchase days (orders of one day merged), calibration summary in days, then weeks as
# days / 7 (Fader & Hardie's convention, and fidelis'). lifetimes'
# calibration_and_holdout_data does the same but fails under pandas 3, hence by hand.
days = raw[["customer_index", "date"]].drop_duplicates()
end, calibration_end = pd.Timestamp("1998-06-30"), pd.Timestamp("1997-09-30")
cal = days[days["date"] <= calibration_end].groupby("customer_index")["date"].agg(["min", "max", "count"])
hold = days[(days["date"] > calibration_end) & (days["date"] <= end)].groupby("customer_index").size()
split = pd.DataFrame({
    "frequency_cal": cal["count"] - 1,
    "recency_cal": (cal["max"] - cal["min"]).dt.days / 7.0,
    "T_cal": (calibration_end - cal["min"]).dt.days / 7.0,
})
split["frequency_holdout"] = hold.reindex(split.index, fill_value=0)
print("calibration customers", len(split), "actual holdout purchase days", split["frequency_holdout"].sum())
first = split.head(5)
print(first[["frequency_cal", "recency_cal", "T_cal", "frequency_holdout"]].to_string())
for name, model in {"bg_nbd": BetaGeoFitter(), "mbg_nbd": ModifiedBetaGeoFitter(), "pareto_nbd": ParetoNBDFitter()}.items():
    model.fit(split["frequency_cal"], split["recency_cal"], split["T_cal"])
    predicted = model.conditional_expected_number_of_purchases_up_to_time(
        39, split["frequency_cal"], split["recency_cal"], split["T_cal"]
    )
    error = predicted - split["frequency_holdout"]
    print(f"-- {name}: parameters {model.params_.to_dict()}")
    print(f"   calibration log-likelihood {log_likelihood(name, model.params_.to_numpy(), split)!r}")
    print(f"   predicted {predicted.sum()!r} actual {split['frequency_holdout'].sum()} "
          f"total_error {predicted.sum() / split['frequency_holdout'].sum() - 1!r}")
    print(f"   mae {error.abs().mean()!r} rmse {np.sqrt((error ** 2).mean())!r}")
    print("   first five customers", [repr(v) for v in predicted.head(5)])
    bucket = split["frequency_cal"].clip(upper=7)
    table = pd.DataFrame({"bucket": bucket, "actual": split["frequency_holdout"], "predicted": predicted})
    print(table.groupby("bucket").agg(customers=("actual", "size"), actual_mean=("actual", "mean"),
                                      predicted_mean=("predicted", "mean")).to_string())
