//! Synthetic rows for every input table of the data contract (`transactions`, `customers`,
//! `loyalty_events`, `survey_responses`, `wallet`).
//!
//! Purchases follow the textbook generative stories the pipeline's models assume, so the fits
//! have something real to recover: BG/NBD for when customers buy and stop buying (Fader, Hardie &
//! Lee 2005) and Gamma-Gamma for how much they spend (Fader & Hardie). Everything else (refunds,
//! same-day repeats, channels, categories, discounts, the loyalty programme, surveys and wallet
//! estimates) is layered on top so that every KPI of the report has data behind it.
//!
//! Output is a pure function of [`SampleSpec`]: customers are generated in fixed-size chunks, each
//! from its own ChaCha8 stream of the seed, so the rows do not depend on the number of threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp1, Gamma, StandardNormal};

// ---------------------------------------------------------------------------------------------
// Model parameters. Rates are per week because `week` is the pipeline's default `time_unit`: a
// BG/NBD fit on this data with time_unit = week should land near these values (same-day repeat
// orders collapse into one purchase day, which the fit sees as one transaction).
// ---------------------------------------------------------------------------------------------

/// BG/NBD purchase rate λ ~ Gamma(shape r, rate α) per week: mean r/α = 0.071 purchases a week
/// (3.7 a year). The small shape makes most customers light buyers and a few very heavy ones;
/// with the dropout below this gives ~3.9 purchase days (~4.1 orders) per buyer and ~46%
/// one-time buyers over a 3-year window (acquisitions are spread over the window, so the mean
/// exposure is ~1.4 years).
const BGNBD_R: f64 = 0.32;
/// Rate α of the Gamma distribution of λ, in weeks (see [`BGNBD_R`]).
const BGNBD_ALPHA: f64 = 4.5;
/// BG/NBD dropout probability p ~ Beta(a, b), applied after every repeat purchase; mean 0.12.
const BGNBD_A: f64 = 0.55;
/// Second shape of the dropout Beta distribution (see [`BGNBD_A`]).
const BGNBD_B: f64 = 4.0;
/// Gamma-Gamma spend: order amount ~ Gamma(shape p, rate ν) with ν ~ Gamma(shape q, rate γ) per
/// customer. Population mean order value p·γ / (q − 1) = 60 currency units; q = 4 gives a
/// customer-level spread with a tail of big spenders but a finite variance.
const GG_P: f64 = 6.0;
/// Shape q of the per-customer ν (see [`GG_P`]).
const GG_Q: f64 = 4.0;
/// Rate γ of the per-customer ν (see [`GG_P`]).
const GG_GAMMA: f64 = 30.0;

/// Acquisitions per day at the end of the window relative to its start: mild, steady growth.
const ACQUISITION_GROWTH: f64 = 1.6;
/// Share of customer records that never buy (registered only): ~10% on top of the buyers.
const NON_BUYER_SHARE: f64 = 0.09;
/// Share of buyers whose first purchase follows signup within the hour (checkout signup); the
/// others buy a few days later.
const IMMEDIATE_PURCHASE_SHARE: f64 = 0.45;
/// Mean days from signup to first purchase for the buyers who do not buy at once.
const SIGNUP_TO_PURCHASE_MEAN_DAYS: f64 = 2.0;
/// Share of buyers without a recorded signup (guest checkout, legacy imports).
const MISSING_SIGNUP_SHARE: f64 = 0.05;

/// Chance that a purchase gets a second order later the same day. With the days on which the
/// BG/NBD process itself lands twice this makes ~5% of purchase days carry two or more orders.
const SAME_DAY_EXTRA_ORDER: f64 = 0.038;
/// Share of purchase orders refunded later by a separate refund row.
const REFUND_SHARE: f64 = 0.04;
/// Share of refunds that return the whole order; the others return 20–100% of it.
const FULL_REFUND_SHARE: f64 = 0.7;
/// Latest refund, in days after its purchase.
const REFUND_MAX_DAYS: f64 = 30.0;

/// Sales channels with their share of customers preferring them.
const CHANNELS: [(&str, f64); 3] = [("web", 0.5), ("app", 0.3), ("store", 0.2)];
/// Share of a customer's orders placed in their preferred channel.
const PREFERRED_CHANNEL_SHARE: f64 = 0.85;
/// Product categories with their overall popularity.
const CATEGORIES: [(&str, f64); 8] = [
    ("apparel", 0.22),
    ("beauty", 0.12),
    ("books", 0.08),
    ("electronics", 0.14),
    ("grocery", 0.16),
    ("home", 0.12),
    ("sports", 0.09),
    ("toys", 0.07),
];
/// Share of orders in the customer's favourite category, then in their second one; the rest
/// follow overall popularity.
const PRIMARY_CATEGORY_SHARE: f64 = 0.55;
/// See [`PRIMARY_CATEGORY_SHARE`].
const SECONDARY_CATEGORY_SHARE: f64 = 0.25;
/// How customers found us (the `acquisition_channel` column) with their shares.
const ACQUISITION_CHANNELS: [(&str, f64); 6] = [
    ("organic", 0.30),
    ("paid_search", 0.25),
    ("social", 0.15),
    ("referral", 0.10),
    ("email", 0.10),
    ("affiliate", 0.10),
];

/// Share of price-driven customers: most of their orders carry a deep discount.
const PRICE_DRIVEN_SHARE: f64 = 0.10;
/// Share of a price-driven customer's orders with a deep discount; at 50–75% of gross this keeps
/// their discount above half their gross spend once they have a few orders.
const DEEP_DISCOUNT_ORDER_SHARE: f64 = 0.85;
/// Deep discount as a fraction of gross (gross = amount + discount).
const DEEP_DISCOUNT: (f64, f64) = (0.50, 0.75);
/// Share of other orders with an occasional promotion.
const PROMO_ORDER_SHARE: f64 = 0.15;
/// Occasional promotion as a fraction of gross.
const PROMO_DISCOUNT: (f64, f64) = (0.05, 0.20);
/// Cost of goods as a fraction of the amount paid.
const COST_SHARE: (f64, f64) = (0.55, 0.70);

/// Membership probability of a buyer is BASE + LIFT · engagement (engagement in [0, 1], from the
/// purchase rate), so members buy more often than non-members, as in real programmes; ~40% of
/// customers end up members.
const MEMBER_BASE: f64 = 0.29;
/// See [`MEMBER_BASE`].
const MEMBER_LIFT: f64 = 0.45;
/// Membership probability of registered non-buyers.
const NON_BUYER_MEMBER_SHARE: f64 = 0.25;
/// Share of buying members who join at a later purchase instead of at signup.
const LATE_ENROLL_SHARE: f64 = 0.25;
/// Lifetime points at which a member reaches (silver, gold); everyone starts bronze.
const TIER_POINTS: [(i64, &str); 3] = [(0, "bronze"), (500, "silver"), (1_500, "gold")];
/// Smallest balance a member can redeem, and the chance they do at a purchase when they can.
const REDEEM_MIN_POINTS: i64 = 250;
/// See [`REDEEM_MIN_POINTS`].
const REDEEM_PROBABILITY: f64 = 0.35;
/// Redemptions are whole multiples of this many points.
const REDEEM_STEP_POINTS: i64 = 50;
/// Reward cost of a point: 0.01 currency units, i.e. one cent.
const REWARD_CENTS_PER_POINT: i64 = 1;
/// Engagement actions a member takes after a purchase: (event_type, probability, latest delay in
/// days).
const ENGAGEMENT_ACTIONS: [(&str, f64, f64); 3] =
    [("review", 0.06, 10.0), ("social_share", 0.03, 0.25), ("referral", 0.02, 30.0)];

/// Share of buyers who answer surveys (~20% of customers), and the share of those answering
/// twice.
const SURVEY_SHARE: f64 = 0.22;
/// See [`SURVEY_SHARE`].
const SECOND_SURVEY_SHARE: f64 = 0.3;
/// Latest survey answer, in days after the purchase that triggered it.
const SURVEY_MAX_DELAY_DAYS: f64 = 14.0;
/// Latent NPS score: mean, effect of engagement (log purchase rate relative to the mean, clamped
/// to ±2), effect of membership, noise. Gives an NPS index of roughly +10.
const NPS_MEAN: f64 = 8.1;
/// See [`NPS_MEAN`].
const NPS_ENGAGEMENT_EFFECT: f64 = 0.6;
/// See [`NPS_MEAN`].
const NPS_MEMBER_EFFECT: f64 = 0.5;
/// See [`NPS_MEAN`].
const NPS_NOISE: f64 = 1.7;
/// Share of responses with each optional answer present: nps, repurchase, upsell, category
/// spend, brand rank (with brands used).
const ANSWERED: [f64; 5] = [0.97, 0.9, 0.8, 0.4, 0.5];
/// Distribution of the number of brands a respondent uses in the category (1..=5).
const BRANDS_USED: [(u8, f64); 5] = [(1, 0.15), (2, 0.30), (3, 0.30), (4, 0.15), (5, 0.10)];

/// Share of buyers with monthly wallet estimates (panel or bureau data): ~15% of customers.
const WALLET_SHARE: f64 = 0.165;
/// Our true share of a customer's category spend ~ Beta(a, b), mean 0.4.
const WALLET_SHARE_BETA: (f64, f64) = (2.0, 3.0);
/// Month-to-month spread (log scale) of spend with other brands.
const OTHER_SPEND_SIGMA: f64 = 0.5;
/// Multiplicative error of an estimate. An error below 1 in a month where we got most of the
/// customer's spend puts the estimate under our own spend, so a few shares get capped.
const ESTIMATE_ERROR: (f64, f64) = (0.85, 1.15);

/// Wall-clock activity by hour of day (UTC): quiet nights, a lunch peak and an evening peak.
const HOUR_WEIGHTS: [f64; 24] = [
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 6.5, 6.0, 6.0, 6.5, 7.0, 8.0, 9.0, 9.0, 7.0, 4.0,
    2.0,
];

/// Customers per chunk. Each chunk has its own random stream, so this (not the thread count)
/// fixes the output; changing it changes the rows.
const CHUNK: usize = 4_096;
/// Longest window generated; keeps every timestamp far inside chrono's range.
const MAX_YEARS: u32 = 100;
const MINUTES_PER_DAY: f64 = 1_440.0;
const SECONDS_PER_DAY: i64 = 86_400;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    /// Number of customer records, buyers and registered non-buyers (~9%) together.
    pub customers: usize,
    /// Seed of the random streams: the same spec always yields the same rows.
    pub seed: u64,
    /// Last day of data (inclusive); nothing is dated after it.
    pub end_date: NaiveDate,
    /// Length of the window ending at `end_date`, capped at 100; 0 means `end_date` only.
    pub years: u32,
}

/// Rows of every input table. Transactions are grouped by customer; `order_id`s are numbered
/// from 1 in chronological order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SampleData {
    /// Purchase and refund orders.
    pub transactions: Vec<Transaction>,
    /// One row per customer, ids 1..=`customers` in order of signup.
    pub customers: Vec<Customer>,
    /// Loyalty-programme events of members, per customer in time order.
    pub loyalty_events: Vec<LoyaltyEvent>,
    /// Survey answers (NPS, intents, category spend, brand rank).
    pub survey_responses: Vec<SurveyResponse>,
    /// Monthly category-spend estimates.
    pub wallet: Vec<WalletEstimate>,
}

/// Kind of a transaction row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A purchase order.
    Purchase,
    /// A refund of (part of) an earlier purchase; its amount is positive.
    Refund,
}

impl Kind {
    /// The contract's spelling: `purchase` or `refund`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Purchase => "purchase",
            Kind::Refund => "refund",
        }
    }
}

/// One row of `transactions`.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// Unique, numbered in order of `order_ts`.
    pub order_id: u64,
    /// The buyer.
    pub customer_id: u64,
    /// UTC instant of the order, second precision.
    pub order_ts: NaiveDateTime,
    /// Amount paid (purchase) or returned (refund), positive, in cents.
    pub amount_cents: i64,
    /// Purchase or refund.
    pub kind: Kind,
    /// `web`, `app` or `store`.
    pub channel: &'static str,
    /// Product category.
    pub category: &'static str,
    /// Discount on the order in cents (gross = amount + discount); 0 on refunds.
    pub discount_cents: i64,
    /// Cost of goods in cents; 0 on refunds (the refund moves money only, the purchase row keeps
    /// its cost).
    pub cost_cents: i64,
}

/// One row of `customers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// Customer id.
    pub customer_id: u64,
    /// Registration instant, at or shortly before the first purchase; `None` when not recorded.
    pub signup_ts: Option<NaiveDateTime>,
    /// How the customer found us.
    pub acquisition_channel: &'static str,
    /// Member of the loyalty programme.
    pub loyalty_member: bool,
    /// Current tier of members: `bronze`, `silver` or `gold`.
    pub loyalty_tier: Option<&'static str>,
}

/// One row of `loyalty_events`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoyaltyEvent {
    /// The member.
    pub customer_id: u64,
    /// UTC instant of the event.
    pub event_ts: NaiveDateTime,
    /// `enroll`, `earn`, `redeem`, `tier_change`, `referral`, `review` or `social_share`.
    pub event_type: &'static str,
    /// Points earned (one per whole currency unit spent) or redeemed; `None` for other events.
    pub points: Option<i64>,
    /// Cost of a redemption to us in cents (points × 0.01 currency units); `None` otherwise.
    pub reward_cost_cents: Option<i64>,
}

/// One row of `survey_responses`.
#[derive(Debug, Clone, PartialEq)]
pub struct SurveyResponse {
    /// The respondent.
    pub customer_id: u64,
    /// UTC instant of the answer.
    pub response_ts: NaiveDateTime,
    /// Likelihood to recommend, 0..=10.
    pub nps_score: Option<u8>,
    /// Likelihood to buy again, 0..=10.
    pub repurchase_intent: Option<u8>,
    /// Likelihood to buy more or pricier products, 0..=10.
    pub upsell_intent: Option<u8>,
    /// Stated total spend in the category with all brands in the month of the answer, in cents.
    pub category_spend_cents: Option<i64>,
    /// Our rank among the brands the respondent uses, 1..=`brands_used`.
    pub brand_rank: Option<u8>,
    /// Number of brands the respondent uses in the category, 1..=5.
    pub brands_used: Option<u8>,
}

/// One row of `wallet`.
#[derive(Debug, Clone, PartialEq)]
pub struct WalletEstimate {
    /// The customer.
    pub customer_id: u64,
    /// Calendar month (year, month 1..=12).
    pub period: (i32, u32),
    /// Estimated spend in the category with all brands that month, in cents.
    pub category_spend_cents: i64,
}

/// Generates every table for `spec` in memory, in parallel on the available cores. For
/// large samples, `sample_data::write` streams the same rows to files chunk by chunk.
pub fn generate(spec: &SampleSpec) -> SampleData {
    let threads = crate::threads::available();
    generate_with_threads(spec, threads)
}

/// [`generate`] on `threads` threads; the rows do not depend on `threads`.
fn generate_with_threads(spec: &SampleSpec, threads: usize) -> SampleData {
    let chunks = Chunks::new(spec);
    let mut parts = Vec::with_capacity(chunks.count());
    chunks.each(0..chunks.count(), threads, |_, part| {
        parts.push(part);
        true
    });
    let mut data = concat(parts);
    number_orders(&mut data.transactions);
    data
}

/// The customers of a sample in chunks of [`CHUNK`], each generated from its own random
/// stream: chunk by chunk, in any order, the rows are those of [`generate`] (with
/// `order_id` 0: numbering orders by time needs every chunk, see `sample_data::write`).
pub struct Chunks<'a> {
    spec: &'a SampleSpec,
    model: Model,
    /// Every customer's signup time (8 bytes a customer): drawn from one stream, in order.
    signups: Vec<f64>,
}

impl<'a> Chunks<'a> {
    pub fn new(spec: &'a SampleSpec) -> Self {
        let model = Model::new(spec);
        let signups = model.signup_times(spec.customers, spec.seed);
        Chunks { spec, model, signups }
    }

    /// How many customers there are.
    pub fn customers(&self) -> usize {
        self.signups.len()
    }

    /// How many chunks there are.
    pub fn count(&self) -> usize {
        self.signups.len().div_ceil(CHUNK)
    }

    /// The first instant of the window, and its length in seconds: every timestamp is in it.
    pub fn window(&self) -> (NaiveDateTime, i64) {
        (self.model.start, (self.model.horizon as i64) * SECONDS_PER_DAY)
    }

    /// Generates chunks `range` on `threads` threads and hands each to `each` in order,
    /// holding only a few at a time; stops early when `each` returns false.
    pub fn each(&self, range: std::ops::Range<usize>, threads: usize, mut each: impl FnMut(usize, SampleData) -> bool) {
        let next = AtomicUsize::new(range.start);
        let (sender, receiver) = std::sync::mpsc::sync_channel::<(usize, SampleData)>(threads.max(1));
        std::thread::scope(|scope| {
            for _ in 0..threads.clamp(1, range.len().max(1)) {
                let (sender, next, end) = (sender.clone(), &next, range.end);
                scope.spawn(move || {
                    loop {
                        let chunk = next.fetch_add(1, Ordering::Relaxed);
                        if chunk >= end || sender.send((chunk, self.chunk(chunk))).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(sender);
            // Workers take chunks in order, so at most `threads` arrive ahead of their turn.
            let mut early = std::collections::BTreeMap::new();
            let mut wanted = range.start;
            for (chunk, data) in receiver.iter() {
                early.insert(chunk, data);
                while let Some(data) = early.remove(&wanted) {
                    if !each(wanted, data) {
                        return;
                    }
                    wanted += 1;
                }
            }
        });
    }

    /// The rows of chunk `chunk`.
    pub fn chunk(&self, chunk: usize) -> SampleData {
        let first = chunk * CHUNK;
        let times = &self.signups[first..self.signups.len().min(first + CHUNK)];
        self.model.chunk(chunk, first, times, self.spec.seed)
    }
}

/// Appends the chunks in order, freeing each as soon as it is copied. The reserved capacity is
/// only paged in as it fills, so peak memory stays near one copy of the output.
fn concat(parts: Vec<SampleData>) -> SampleData {
    let mut all = SampleData {
        transactions: Vec::with_capacity(parts.iter().map(|p| p.transactions.len()).sum()),
        customers: Vec::with_capacity(parts.iter().map(|p| p.customers.len()).sum()),
        loyalty_events: Vec::with_capacity(parts.iter().map(|p| p.loyalty_events.len()).sum()),
        survey_responses: Vec::with_capacity(parts.iter().map(|p| p.survey_responses.len()).sum()),
        wallet: Vec::with_capacity(parts.iter().map(|p| p.wallet.len()).sum()),
    };
    for part in parts {
        all.transactions.extend(part.transactions);
        all.customers.extend(part.customers);
        all.loyalty_events.extend(part.loyalty_events);
        all.survey_responses.extend(part.survey_responses);
        all.wallet.extend(part.wallet);
    }
    all
}

/// Numbers orders 1, 2, ... by time (ties by row), as an order system would, without moving
/// the rows.
fn number_orders(transactions: &mut [Transaction]) {
    let mut by_time: Vec<(i64, usize)> =
        transactions.iter().enumerate().map(|(row, t)| (t.order_ts.and_utc().timestamp(), row)).collect();
    by_time.sort_unstable();
    for (id, (_, row)) in (1..).zip(by_time) {
        transactions[row].order_id = id;
    }
}

/// The fixed parts of the generator: the window, the population distributions and the
/// time-of-day profile. Times inside the generator are days since the window's first midnight.
struct Model {
    start: NaiveDateTime,
    /// Days in the window; every time is below it.
    horizon: f64,
    /// Cumulative [`HOUR_WEIGHTS`], normalised to end at 1.
    hour_cdf: [f64; 25],
    rate: Gamma<f64>,
    dropout: Beta<f64>,
    nu: Gamma<f64>,
    spend: Gamma<f64>,
    wallet_share: Beta<f64>,
}

/// A purchase order of the customer being generated.
struct Order {
    t: f64,
    ts: NaiveDateTime,
    amount: i64,
}

/// What stays fixed about one customer.
struct Traits {
    id: u64,
    /// Log of the weekly purchase rate relative to the population mean, clamped to ±2.
    engagement: f64,
    member: bool,
}

impl Model {
    fn new(spec: &SampleSpec) -> Self {
        let end = spec.end_date;
        // An end date near chrono's lower limit cannot reach back `years`; start at the limit.
        let first_day = end.checked_sub_months(Months::new(12 * spec.years.min(MAX_YEARS))).unwrap_or(NaiveDate::MIN);
        let mut hour_cdf = [0.0; 25];
        for (hour, weight) in HOUR_WEIGHTS.iter().enumerate() {
            hour_cdf[hour + 1] = hour_cdf[hour] + weight;
        }
        let total = hour_cdf[24];
        hour_cdf.iter_mut().for_each(|c| *c /= total);
        // The parameters are constants, so these constructors cannot fail at run time.
        let valid = "constant distribution parameters are valid";
        Model {
            start: first_day.and_time(NaiveTime::MIN),
            horizon: ((end - first_day).num_days() + 1) as f64,
            hour_cdf,
            rate: Gamma::new(BGNBD_R, 1.0 / BGNBD_ALPHA).expect(valid),
            dropout: Beta::new(BGNBD_A, BGNBD_B).expect(valid),
            nu: Gamma::new(GG_Q, 1.0 / GG_GAMMA).expect(valid),
            spend: Gamma::new(GG_P, 1.0).expect(valid),
            wallet_share: Beta::new(WALLET_SHARE_BETA.0, WALLET_SHARE_BETA.1).expect(valid),
        }
    }

    /// Sorted signup times of `n` customers, so that ids grow with signup like a real sequence.
    /// Sorted uniforms come from normalised cumulative exponential spacings (O(n), one pass);
    /// the inverse CDF of an exponentially growing density turns them into times with growth.
    fn signup_times(&self, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut sum = 0.0;
        let mut times: Vec<f64> = (0..n)
            .map(|_| {
                sum += rng.sample::<f64, _>(Exp1);
                sum
            })
            .collect();
        let total = sum + rng.sample::<f64, _>(Exp1);
        let growth = ACQUISITION_GROWTH.ln();
        for t in &mut times {
            let u = *t / total;
            *t = (u * (ACQUISITION_GROWTH - 1.0)).ln_1p() / growth * self.horizon;
        }
        times
    }

    /// Customers `first + 1 ..` with the given signup times, from the chunk's own stream.
    fn chunk(&self, chunk: usize, first: usize, signups: &[f64], seed: u64) -> SampleData {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Stream 0 drew the signup times.
        rng.set_stream(chunk as u64 + 1);
        let mut out = SampleData::default();
        let mut orders = Vec::new();
        for (offset, &signup) in signups.iter().enumerate() {
            self.customer((first + offset + 1) as u64, signup, &mut rng, &mut out, &mut orders);
        }
        out
    }

    /// The instant of time `t`. The fraction of the day goes through the hour-of-day profile's
    /// inverse CDF, which is increasing, so times keep their order within a day.
    fn at(&self, t: f64) -> NaiveDateTime {
        // The clamp only absorbs float rounding at the window's edges.
        let t = t.clamp(0.0, self.horizon - 1e-9);
        let day = t.floor();
        let u = t - day;
        let hour = self.hour_cdf[1..].partition_point(|&c| c <= u).min(23);
        let within = (u - self.hour_cdf[hour]) / (self.hour_cdf[hour + 1] - self.hour_cdf[hour]);
        let seconds = ((hour as f64 + within.clamp(0.0, 1.0)) * 3_600.0) as i64;
        self.start + TimeDelta::seconds(day as i64 * SECONDS_PER_DAY + seconds.min(SECONDS_PER_DAY - 1))
    }

    /// One customer's rows, appended to `out`; `orders` is scratch space reused across customers.
    fn customer(&self, id: u64, signup: f64, rng: &mut ChaCha8Rng, out: &mut SampleData, orders: &mut Vec<Order>) {
        let weekly_rate = self.rate.sample(rng);
        let engagement = (weekly_rate * BGNBD_ALPHA / BGNBD_R).ln().clamp(-2.0, 2.0);
        let daily_rate = (weekly_rate / 7.0).max(f64::MIN_POSITIVE);
        let dropout = self.dropout.sample(rng);
        // The floor caps a customer's mean order at 60,000 units (probability ~1e-12) so amounts
        // stay finite and far inside DECIMAL(18,2).
        let nu = self.nu.sample(rng).max(1e-4);

        orders.clear();
        if rng.random_bool(1.0 - NON_BUYER_SHARE) {
            self.purchase_times(signup, daily_rate, dropout, rng, orders);
        }
        let buyer = !orders.is_empty();
        let member_probability =
            if buyer { MEMBER_BASE + MEMBER_LIFT * (engagement + 2.0) / 4.0 } else { NON_BUYER_MEMBER_SHARE };
        let traits = Traits { id, engagement, member: rng.random_bool(member_probability) };
        let signup_recorded = !buyer || !rng.random_bool(MISSING_SIGNUP_SHARE);

        self.transactions(&traits, nu, rng, orders, &mut out.transactions);
        let tier = traits.member.then(|| self.loyalty(&traits, signup, signup_recorded, orders, rng, out));
        out.customers.push(Customer {
            customer_id: id,
            signup_ts: signup_recorded.then(|| self.at(signup)),
            acquisition_channel: pick(rng, &ACQUISITION_CHANNELS),
            loyalty_member: traits.member,
            loyalty_tier: tier,
        });
        if buyer {
            let surveyed = rng.random_bool(SURVEY_SHARE);
            let estimated = rng.random_bool(WALLET_SHARE);
            if surveyed || estimated {
                let months = monthly_spend(orders);
                // The same customer-level share drives survey and wallet answers, so they agree.
                // Other brands get about one of the customer's average baskets (p/ν) a month,
                // scaled by how much of the category we do not get; the floor keeps it finite.
                let share = self.wallet_share.sample(rng).max(0.02);
                let other = GG_P / nu * (1.0 - share) / share;
                if surveyed {
                    self.surveys(&traits, other, &months, orders, rng, &mut out.survey_responses);
                }
                if estimated {
                    wallet(id, other, &months, rng, &mut out.wallet);
                }
            }
        }
    }

    /// BG/NBD: the first purchase shortly after signup, then purchases at rate λ until the
    /// window ends or the customer drops out (probability p after each repeat purchase).
    fn purchase_times(&self, signup: f64, rate: f64, dropout: f64, rng: &mut ChaCha8Rng, orders: &mut Vec<Order>) {
        let delay = if rng.random_bool(IMMEDIATE_PURCHASE_SHARE) {
            rng.random_range(2.0..60.0) / MINUTES_PER_DAY
        } else {
            rng.sample::<f64, _>(Exp1) * SIGNUP_TO_PURCHASE_MEAN_DAYS
        };
        let mut t = signup + delay;
        // A customer signing up at the very end may not have bought yet: a registered non-buyer.
        if t >= self.horizon {
            return;
        }
        let mut add = |t: f64, rng: &mut ChaCha8Rng| {
            orders.push(Order { t, ts: self.start, amount: 0 });
            if rng.random_bool(SAME_DAY_EXTRA_ORDER) {
                let day = t.floor();
                let later = (t - day) + (1.0 - (t - day)) * rng.random::<f64>();
                orders.push(Order { t: day + later.min(1.0 - 1e-9), ts: self.start, amount: 0 });
            }
        };
        add(t, rng);
        loop {
            t += rng.sample::<f64, _>(Exp1) / rate;
            if t >= self.horizon {
                break;
            }
            add(t, rng);
            if rng.random_bool(dropout) {
                break;
            }
        }
        // A same-day extra order may fall after the next purchase.
        orders.sort_by(|a, b| a.t.total_cmp(&b.t));
        for order in orders.iter_mut() {
            order.ts = self.at(order.t);
        }
    }

    /// Purchase rows with Gamma-Gamma amounts, channel, category, discount and cost, plus
    /// refund rows; fills in `orders[..].amount`.
    fn transactions(
        &self,
        c: &Traits,
        nu: f64,
        rng: &mut ChaCha8Rng,
        orders: &mut [Order],
        rows: &mut Vec<Transaction>,
    ) {
        if orders.is_empty() {
            return;
        }
        let preferred = pick_index(rng, &CHANNELS);
        let favourite = pick_index(rng, &CATEGORIES);
        let second = pick_index(rng, &CATEGORIES);
        let price_driven = rng.random_bool(PRICE_DRIVEN_SHARE);
        for order in orders.iter_mut() {
            let amount = ((self.spend.sample(rng) / nu * 100.0).round() as i64).max(1);
            order.amount = amount;
            let channel = if rng.random_bool(PREFERRED_CHANNEL_SHARE) {
                CHANNELS[preferred].0
            } else {
                CHANNELS[(preferred + rng.random_range(1..CHANNELS.len())) % CHANNELS.len()].0
            };
            let draw: f64 = rng.random();
            let category = if draw < PRIMARY_CATEGORY_SHARE {
                CATEGORIES[favourite].0
            } else if draw < PRIMARY_CATEGORY_SHARE + SECONDARY_CATEGORY_SHARE {
                CATEGORIES[second].0
            } else {
                pick(rng, &CATEGORIES)
            };
            let discount_share = if price_driven && rng.random_bool(DEEP_DISCOUNT_ORDER_SHARE) {
                rng.random_range(DEEP_DISCOUNT.0..DEEP_DISCOUNT.1)
            } else if rng.random_bool(PROMO_ORDER_SHARE) {
                rng.random_range(PROMO_DISCOUNT.0..PROMO_DISCOUNT.1)
            } else {
                0.0
            };
            // discount = gross · share and amount = gross − discount.
            let discount = (amount as f64 * discount_share / (1.0 - discount_share)).round() as i64;
            let cost = (amount as f64 * rng.random_range(COST_SHARE.0..COST_SHARE.1)).round() as i64;
            let purchase = Transaction {
                order_id: 0,
                customer_id: c.id,
                order_ts: order.ts,
                amount_cents: amount,
                kind: Kind::Purchase,
                channel,
                category,
                discount_cents: discount,
                cost_cents: cost,
            };
            let refund = rng.random_bool(REFUND_SHARE).then(|| {
                let returned = if rng.random_bool(FULL_REFUND_SHARE) {
                    amount
                } else {
                    ((amount as f64 * rng.random_range(0.2..1.0)).round() as i64).max(1)
                };
                let latest = REFUND_MAX_DAYS.min(self.horizon - order.t);
                Transaction {
                    order_ts: self.at(order.t + latest * rng.random::<f64>()),
                    amount_cents: returned,
                    kind: Kind::Refund,
                    discount_cents: 0,
                    cost_cents: 0,
                    ..purchase.clone()
                }
            });
            rows.push(purchase);
            rows.extend(refund);
        }
    }

    /// A member's events: enroll, earn per purchase, redeem, tier changes and engagement
    /// actions, in time order. Returns the member's tier at the end.
    fn loyalty(
        &self,
        c: &Traits,
        signup: f64,
        signup_recorded: bool,
        orders: &[Order],
        rng: &mut ChaCha8Rng,
        out: &mut SampleData,
    ) -> &'static str {
        let events = &mut out.loyalty_events;
        let first_event = events.len();
        let event = |t: NaiveDateTime, event_type, points: Option<i64>| LoyaltyEvent {
            customer_id: c.id,
            event_ts: t,
            event_type,
            points,
            reward_cost_cents: None,
        };
        let enroll = match orders.first() {
            Some(_) if rng.random_bool(LATE_ENROLL_SHARE) => orders[rng.random_range(0..orders.len())].t,
            Some(first) if !signup_recorded => first.t,
            first => {
                let until_purchase = first.map_or(self.horizon, |o| o.t);
                (signup + rng.random_range(0.0..10.0) / MINUTES_PER_DAY).min(until_purchase)
            }
        };
        events.push(event(self.at(enroll), "enroll", None));
        let (mut lifetime, mut balance, mut tier) = (0, 0, 0);
        for order in orders.iter().filter(|o| o.t >= enroll) {
            // Members pay with their balance at checkout, before earning on the order.
            if balance >= REDEEM_MIN_POINTS && rng.random_bool(REDEEM_PROBABILITY) {
                let points = balance / REDEEM_STEP_POINTS * REDEEM_STEP_POINTS;
                balance -= points;
                events.push(LoyaltyEvent {
                    reward_cost_cents: Some(points * REWARD_CENTS_PER_POINT),
                    ..event(order.ts, "redeem", Some(points))
                });
            }
            let points = order.amount / 100;
            if points > 0 {
                events.push(event(order.ts, "earn", Some(points)));
            }
            lifetime += points;
            balance += points;
            while tier + 1 < TIER_POINTS.len() && lifetime >= TIER_POINTS[tier + 1].0 {
                tier += 1;
                events.push(event(order.ts, "tier_change", None));
            }
            for (action, probability, max_delay) in ENGAGEMENT_ACTIONS {
                if rng.random_bool(probability) {
                    let t = order.t + max_delay * rng.random::<f64>();
                    if t < self.horizon {
                        events.push(event(self.at(t), action, None));
                    }
                }
            }
        }
        events[first_event..].sort_by_key(|e| e.event_ts);
        TIER_POINTS[tier].1
    }

    /// One or two answers, each a few days after a random purchase of the customer.
    fn surveys(
        &self,
        c: &Traits,
        other_spend: f64,
        months: &[((i32, u32), i64)],
        orders: &[Order],
        rng: &mut ChaCha8Rng,
        rows: &mut Vec<SurveyResponse>,
    ) {
        let answers = if rng.random_bool(SECOND_SURVEY_SHARE) { 2 } else { 1 };
        let satisfaction = NPS_MEAN
            + NPS_ENGAGEMENT_EFFECT * c.engagement
            + if c.member { NPS_MEMBER_EFFECT } else { 0.0 }
            + NPS_NOISE * rng.sample::<f64, _>(StandardNormal);
        let first_row = rows.len();
        for _ in 0..answers {
            // Only buyers are surveyed, so `orders` is not empty.
            let order = &orders[rng.random_range(0..orders.len())];
            let delay = SURVEY_MAX_DELAY_DAYS.min(self.horizon - order.t) * rng.random::<f64>();
            let response_ts = self.at(order.t + delay);
            let nps = satisfaction + 0.8 * normal(rng);
            let [nps_answered, repurchase_answered, upsell_answered, spend_answered, rank_answered] =
                ANSWERED.map(|share| rng.random_bool(share));
            let brands_used = pick(rng, &BRANDS_USED);
            // Happier customers rank us higher among the brands they use.
            let rank = 1.0 + (10.0 - nps) / 10.0 * f64::from(brands_used - 1) + 0.7 * normal(rng);
            let period = (response_ts.year(), response_ts.month());
            let ours = months.iter().find(|(m, _)| *m == period).map_or(0, |(_, cents)| *cents);
            rows.push(SurveyResponse {
                customer_id: c.id,
                response_ts,
                nps_score: nps_answered.then(|| score(nps)),
                repurchase_intent: repurchase_answered.then(|| score(nps + 0.5 + 1.2 * normal(rng))),
                upsell_intent: upsell_answered.then(|| score(nps - 1.5 + 1.8 * normal(rng))),
                category_spend_cents: spend_answered.then(|| estimate(ours, other_spend, rng)),
                brand_rank: rank_answered.then(|| rank.round().clamp(1.0, f64::from(brands_used)) as u8),
                brands_used: rank_answered.then_some(brands_used),
            });
        }
        rows[first_row..].sort_by_key(|r| r.response_ts);
    }
}

/// A monthly category-spend estimate for every month from the customer's first to last
/// purchase month: our spend plus spend with other brands, times a measurement error.
fn wallet(
    id: u64,
    other_spend: f64,
    months: &[((i32, u32), i64)],
    rng: &mut ChaCha8Rng,
    rows: &mut Vec<WalletEstimate>,
) {
    let (Some(&(first, _)), Some(&(last, _))) = (months.first(), months.last()) else { return };
    let mut spend = months.iter().peekable();
    let mut period = first;
    while period <= last {
        let ours = spend.next_if(|(m, _)| *m == period).map_or(0, |(_, cents)| *cents);
        rows.push(WalletEstimate { customer_id: id, period, category_spend_cents: estimate(ours, other_spend, rng) });
        period = if period.1 == 12 { (period.0 + 1, 1) } else { (period.0, period.1 + 1) };
    }
}

/// Estimated category spend in cents for a month in which we got `ours` cents, the customer
/// spending about `other` currency units a month with other brands.
fn estimate(ours: i64, other: f64, rng: &mut ChaCha8Rng) -> i64 {
    let others = other * 100.0 * (OTHER_SPEND_SIGMA * normal(rng)).exp();
    let error = rng.random_range(ESTIMATE_ERROR.0..ESTIMATE_ERROR.1);
    (((ours as f64 + others) * error).round() as i64).max(1)
}

/// Our purchase spend per calendar month, in cents, months ascending (orders are sorted).
fn monthly_spend(orders: &[Order]) -> Vec<((i32, u32), i64)> {
    let mut months: Vec<((i32, u32), i64)> = Vec::new();
    for order in orders {
        let month = (order.ts.year(), order.ts.month());
        match months.last_mut() {
            Some((last, cents)) if *last == month => *cents += order.amount,
            _ => months.push((month, order.amount)),
        }
    }
    months
}

/// A 0..=10 answer from a latent score.
fn score(latent: f64) -> u8 {
    latent.round().clamp(0.0, 10.0) as u8
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// Index drawn with the given weights (which need not sum to 1).
fn pick_index<T>(rng: &mut ChaCha8Rng, weighted: &[(T, f64)]) -> usize {
    let total: f64 = weighted.iter().map(|(_, w)| w).sum();
    let mut draw = rng.random::<f64>() * total;
    for (index, (_, weight)) in weighted.iter().enumerate() {
        if draw < *weight {
            return index;
        }
        draw -= weight;
    }
    // Float rounding can leave the draw a hair above the last weight.
    weighted.len() - 1
}

/// Value drawn with the given weights.
fn pick<T: Copy>(rng: &mut ChaCha8Rng, weighted: &[(T, f64)]) -> T {
    weighted[pick_index(rng, weighted)].0
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::OnceLock;

    use chrono::Timelike;

    use super::*;

    fn spec(customers: usize, seed: u64) -> SampleSpec {
        SampleSpec { customers, seed, end_date: NaiveDate::from_ymd_opt(2025, 6, 30).expect("valid date"), years: 3 }
    }

    /// 20k customers, generated once for all the statistical tests.
    fn sample() -> &'static SampleData {
        static SAMPLE: OnceLock<SampleData> = OnceLock::new();
        SAMPLE.get_or_init(|| generate(&spec(20_000, 42)))
    }

    fn purchases(data: &SampleData) -> impl Iterator<Item = &Transaction> {
        data.transactions.iter().filter(|t| t.kind == Kind::Purchase)
    }

    #[test]
    fn same_seed_same_rows_other_seed_other_rows() {
        let rows = generate(&spec(3_000, 7));
        assert_eq!(rows, generate(&spec(3_000, 7)));
        let other = generate(&spec(3_000, 8));
        assert_ne!(rows.transactions, other.transactions);
        assert_ne!(rows.customers, other.customers);
    }

    #[test]
    fn rows_do_not_depend_on_the_thread_count() {
        let spec = spec(3 * CHUNK + 17, 11);
        assert_eq!(generate_with_threads(&spec, 1), generate_with_threads(&spec, 3));
    }

    #[test]
    fn everything_is_dated_inside_the_window() {
        let data = sample();
        let first = NaiveDate::from_ymd_opt(2022, 6, 30).expect("valid date").and_time(NaiveTime::MIN);
        let last =
            NaiveDate::from_ymd_opt(2025, 6, 30).expect("valid date").and_hms_opt(23, 59, 59).expect("valid time");
        let inside = |ts: NaiveDateTime| (first..=last).contains(&ts);
        assert!(data.transactions.iter().all(|t| inside(t.order_ts)));
        assert!(data.customers.iter().filter_map(|c| c.signup_ts).all(inside));
        assert!(data.loyalty_events.iter().all(|e| inside(e.event_ts)));
        assert!(data.survey_responses.iter().all(|r| inside(r.response_ts)));
        assert!(data.wallet.iter().all(|w| ((2022, 6)..=(2025, 6)).contains(&w.period)));
        // Times of day vary (not all midnight) and follow the daily profile's evening peak.
        let evening = purchases(data).filter(|t| (18..22).contains(&t.order_ts.hour())).count();
        let night = purchases(data).filter(|t| (2..6).contains(&t.order_ts.hour())).count();
        assert!(evening > 10 * night, "evening {evening}, night {night}");
    }

    #[test]
    fn a_zero_year_window_is_the_end_date_only() {
        let data = generate(&SampleSpec { years: 0, ..spec(500, 3) });
        let end = NaiveDate::from_ymd_opt(2025, 6, 30).expect("valid date");
        assert!(!data.transactions.is_empty());
        assert!(data.transactions.iter().all(|t| t.order_ts.date() == end));
        assert!(data.loyalty_events.iter().all(|e| e.event_ts.date() == end));
        assert_eq!(generate(&spec(0, 3)), SampleData::default());
    }

    #[test]
    fn refunds_follow_a_real_purchase_of_the_same_customer() {
        let data = sample();
        let mut by_customer: HashMap<u64, Vec<&Transaction>> = HashMap::new();
        for t in purchases(data) {
            by_customer.entry(t.customer_id).or_default().push(t);
        }
        let refunds: Vec<_> = data.transactions.iter().filter(|t| t.kind == Kind::Refund).collect();
        assert!(!refunds.is_empty());
        for refund in refunds {
            assert!(refund.amount_cents > 0);
            let source = by_customer.get(&refund.customer_id).and_then(|orders| {
                orders.iter().find(|p| {
                    p.order_ts <= refund.order_ts
                        && refund.order_ts - p.order_ts <= TimeDelta::days(30)
                        && p.amount_cents >= refund.amount_cents
                        && p.order_id < refund.order_id
                })
            });
            assert!(source.is_some(), "refund without a purchase: {refund:?}");
        }
    }

    #[test]
    fn ids_are_unique_and_every_buyer_is_a_customer() {
        let data = sample();
        let orders: HashSet<u64> = data.transactions.iter().map(|t| t.order_id).collect();
        assert_eq!(orders.len(), data.transactions.len());
        assert_eq!(orders.iter().min(), Some(&1));
        assert_eq!(orders.iter().max(), Some(&(data.transactions.len() as u64)));
        let customers: HashSet<u64> = data.customers.iter().map(|c| c.customer_id).collect();
        assert_eq!(customers.len(), data.customers.len());
        assert_eq!(customers.len(), 20_000);
        assert!(data.transactions.iter().all(|t| customers.contains(&t.customer_id)));
        assert!(data.loyalty_events.iter().all(|e| customers.contains(&e.customer_id)));
        assert!(data.survey_responses.iter().all(|r| customers.contains(&r.customer_id)));
        assert!(data.wallet.iter().all(|w| customers.contains(&w.customer_id)));
        // Order ids follow time.
        let mut by_id: Vec<_> = data.transactions.iter().collect();
        by_id.sort_by_key(|t| t.order_id);
        assert!(by_id.windows(2).all(|w| w[0].order_ts <= w[1].order_ts));
    }

    #[test]
    fn purchase_statistics_match_the_targets() {
        let data = sample();
        let mut orders_per_day: HashMap<(u64, NaiveDate), usize> = HashMap::new();
        let mut orders_per_buyer: HashMap<u64, usize> = HashMap::new();
        let mut amount = 0;
        for t in purchases(data) {
            *orders_per_day.entry((t.customer_id, t.order_ts.date())).or_default() += 1;
            *orders_per_buyer.entry(t.customer_id).or_default() += 1;
            amount += t.amount_cents;
        }
        let orders: usize = orders_per_buyer.values().sum();
        let buyers = orders_per_buyer.len();
        let mut days_per_buyer: HashMap<u64, usize> = HashMap::new();
        for (customer, _) in orders_per_day.keys() {
            *days_per_buyer.entry(*customer).or_default() += 1;
        }
        let mean_orders = orders as f64 / buyers as f64;
        let one_timers = days_per_buyer.values().filter(|&&d| d == 1).count() as f64 / buyers as f64;
        let refunds = data.transactions.iter().filter(|t| t.kind == Kind::Refund).count() as f64 / orders as f64;
        let same_day = orders_per_day.values().filter(|&&n| n > 1).count() as f64 / orders_per_day.len() as f64;
        let aov = amount as f64 / orders as f64 / 100.0;
        let non_buyers = (data.customers.len() - buyers) as f64 / buyers as f64;
        assert!((3.4..4.6).contains(&mean_orders), "orders per buyer {mean_orders}");
        assert!((0.40..0.55).contains(&one_timers), "one-time buyers {one_timers}");
        assert!((0.03..0.05).contains(&refunds), "refunds per purchase {refunds}");
        assert!((0.03..0.08).contains(&same_day), "purchase days with 2+ orders {same_day}");
        assert!((50.0..70.0).contains(&aov), "average order value {aov}");
        assert!((0.07..0.14).contains(&non_buyers), "non-buyers per buyer {non_buyers}");
    }

    #[test]
    fn orders_have_channels_categories_discounts_and_costs() {
        let data = sample();
        let mut gross: HashMap<u64, (i64, i64, usize)> = HashMap::new();
        for t in purchases(data) {
            assert!(["web", "app", "store"].contains(&t.channel));
            assert!(CATEGORIES.iter().any(|(c, _)| *c == t.category));
            assert!(t.discount_cents >= 0);
            let cost = t.cost_cents as f64 / t.amount_cents as f64;
            assert!(t.amount_cents < 100 || (0.54..=0.71).contains(&cost), "cost {cost} of {t:?}");
            let entry = gross.entry(t.customer_id).or_default();
            *entry = (entry.0 + t.discount_cents, entry.1 + t.amount_cents + t.discount_cents, entry.2 + 1);
        }
        let repeat: Vec<_> = gross.values().filter(|(_, _, n)| *n >= 3).collect();
        let price_driven = repeat.iter().filter(|(d, g, _)| 2 * d >= *g).count() as f64 / repeat.len() as f64;
        assert!((0.06..0.14).contains(&price_driven), "price-driven repeat buyers {price_driven}");
        let discounted =
            purchases(data).filter(|t| t.discount_cents > 0).count() as f64 / purchases(data).count() as f64;
        assert!((0.15..0.35).contains(&discounted), "discounted orders {discounted}");
    }

    #[test]
    fn customers_signup_before_buying_and_members_have_events() {
        let data = sample();
        let mut first_purchase: HashMap<u64, NaiveDateTime> = HashMap::new();
        for t in purchases(data) {
            let first = first_purchase.entry(t.customer_id).or_insert(t.order_ts);
            *first = (*first).min(t.order_ts);
        }
        for c in &data.customers {
            if let (Some(signup), Some(first)) = (c.signup_ts, first_purchase.get(&c.customer_id)) {
                assert!(signup <= *first && *first - signup <= TimeDelta::days(30), "{c:?} first bought {first}");
            }
            assert_eq!(c.loyalty_member, c.loyalty_tier.is_some());
        }
        let missing = data.customers.iter().filter(|c| c.signup_ts.is_none()).count() as f64 / 20_000.0;
        assert!((0.03..0.07).contains(&missing), "missing signups {missing}");
        let members: HashSet<u64> = data.customers.iter().filter(|c| c.loyalty_member).map(|c| c.customer_id).collect();
        let member_share = members.len() as f64 / 20_000.0;
        assert!((0.33..0.47).contains(&member_share), "members {member_share}");
        for tier in ["bronze", "silver", "gold"] {
            assert!(data.customers.iter().any(|c| c.loyalty_tier == Some(tier)), "no {tier} member");
        }

        let mut seen = HashSet::new();
        for e in &data.loyalty_events {
            assert!(members.contains(&e.customer_id));
            // Each member's events start with the enrollment.
            assert_eq!(seen.insert(e.customer_id), e.event_type == "enroll", "{e:?}");
            match e.event_type {
                "earn" => assert!(e.points.is_some_and(|p| p > 0) && e.reward_cost_cents.is_none()),
                "redeem" => assert!(e.points.is_some_and(|p| p > 0) && e.reward_cost_cents == e.points),
                _ => assert!(e.points.is_none() && e.reward_cost_cents.is_none()),
            }
        }
        assert_eq!(seen.len(), members.len());
        for kind in ["earn", "redeem", "tier_change", "referral", "review", "social_share"] {
            assert!(data.loyalty_events.iter().any(|e| e.event_type == kind), "no {kind} event");
        }
    }

    #[test]
    fn surveys_and_wallet_estimates_are_plausible() {
        let data = sample();
        let respondents: HashSet<u64> = data.survey_responses.iter().map(|r| r.customer_id).collect();
        let share = respondents.len() as f64 / 20_000.0;
        assert!((0.15..0.25).contains(&share), "surveyed customers {share}");
        let answers = data.survey_responses.len() as f64 / respondents.len() as f64;
        assert!((1.1..1.5).contains(&answers), "answers per respondent {answers}");
        for r in &data.survey_responses {
            for s in [r.nps_score, r.repurchase_intent, r.upsell_intent].into_iter().flatten() {
                assert!(s <= 10);
            }
            assert_eq!(r.brand_rank.is_some(), r.brands_used.is_some());
            if let (Some(rank), Some(used)) = (r.brand_rank, r.brands_used) {
                assert!((1..=used).contains(&rank) && used <= 5);
            }
            assert!(r.category_spend_cents.is_none_or(|c| c > 0));
        }
        // NPS follows engagement: members (who buy more often) are happier.
        let members: HashSet<u64> = data.customers.iter().filter(|c| c.loyalty_member).map(|c| c.customer_id).collect();
        let mean_nps = |member: bool| {
            let scores: Vec<f64> = data
                .survey_responses
                .iter()
                .filter(|r| members.contains(&r.customer_id) == member)
                .filter_map(|r| r.nps_score.map(f64::from))
                .collect();
            scores.iter().sum::<f64>() / scores.len() as f64
        };
        assert!(mean_nps(true) > mean_nps(false) + 0.3);

        let estimated: HashSet<u64> = data.wallet.iter().map(|w| w.customer_id).collect();
        let share = estimated.len() as f64 / 20_000.0;
        assert!((0.10..0.18).contains(&share), "customers with wallet estimates {share}");
        let mut ours: HashMap<(u64, (i32, u32)), i64> = HashMap::new();
        for t in purchases(data) {
            *ours.entry((t.customer_id, (t.order_ts.year(), t.order_ts.month()))).or_default() += t.amount_cents;
        }
        let mut with_spend = 0;
        let mut capped = 0;
        for w in &data.wallet {
            assert!(w.category_spend_cents > 0 && (1..=12).contains(&w.period.1));
            let spend = ours.get(&(w.customer_id, w.period)).copied().unwrap_or(0);
            with_spend += usize::from(spend > 0);
            capped += usize::from(spend > w.category_spend_cents);
        }
        let capped = capped as f64 / with_spend as f64;
        assert!((0.005..0.10).contains(&capped), "capped share of months with spend {capped}");
    }
}
