"""Evidence-based classification of tracks as balloon, aircraft or unknown.

Each piece of evidence adds a log-likelihood ratio (balloon : aircraft); the sum plus the prior
gives P(balloon). A track is labelled balloon or aircraft only when that probability is beyond
the decision thresholds and the track has enough updates; otherwise it is unknown. Every
contribution is kept as a human-readable reason ("12 m/s ground speed: balloon-like").

Evidence (all vectorised over tracks):

* horizontal speed: balloons drift with the wind (rarely above 60 m/s); aircraft cruise at
  100-250 m/s;
* altitude: above 15 km almost nothing but balloons (and a few special aircraft) flies;
* the IMM's model probabilities: a track that needs the manoeuvre model turns or accelerates
  like an aircraft; sustained support for the drift model is weak balloon evidence;
* identity: an ICAO address (transponder) is aircraft evidence unless the emitter category says
  lighter-than-air (ADS-B "B2", ASTERIX ECAT 11); APRS or radiosonde telemetry identities are
  balloon evidence;
* wind match (optional, with a wind field): a velocity within a few m/s of the wind at the
  track's altitude is balloon evidence (:mod:`stratowatch.classify.wind`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from stratowatch.classify.wind import WindMatch, wind_match
from stratowatch.model import Classification, IdentityCodes, ObjectClass
from stratowatch.tracking.tracks import TrackTable
from stratowatch.weather.grid import WindGrid

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ClassifierConfig:
    prior_log_odds: float = -1.0  # balloons are rarer than aircraft
    balloon_threshold: float = 0.75
    aircraft_threshold: float = 0.25
    min_updates: int = 4


@dataclass(frozen=True, slots=True)
class Features:
    speed_mps: FloatArray
    alt_m: FloatArray
    climb_mps: FloatArray
    p_manoeuvre: FloatArray
    p_drift: FloatArray
    identity_kind: list[str]  # "icao", "aprs", "sonde", "" ...
    n_updates: npt.NDArray[np.int64]
    category: list[str | None] = field(default_factory=list)  # emitter category per track
    wind: WindMatch | None = None


#: Emitter categories meaning lighter-than-air: ADS-B set B code 2, ASTERIX CAT021 ECAT 11.
LIGHTER_THAN_AIR = frozenset({"B2", "ecat:11"})


def _speed_llr(speed: FloatArray) -> FloatArray:
    return np.interp(speed, [0.0, 45.0, 70.0, 100.0, 400.0], [2.0, 1.5, 0.0, -3.0, -4.0])


def _alt_llr(alt: FloatArray) -> FloatArray:
    return np.interp(alt, [0.0, 13_000.0, 15_000.0, 17_000.0, 40_000.0], [-0.5, -0.5, 0.5, 2.0, 2.5])


def classify_features(f: Features, config: ClassifierConfig | None = None) -> list[Classification]:
    cfg = config or ClassifierConfig()
    n = f.speed_mps.shape[0]
    llr_speed = _speed_llr(f.speed_mps)
    llr_alt = _alt_llr(f.alt_m)
    llr_man = np.where(f.p_manoeuvre > 0.5, -2.0, 0.0)
    llr_drift = np.clip(np.log(np.maximum(f.p_drift, 1e-6) / np.maximum(1.0 - f.p_drift, 1e-6)), -1.0, 1.0)
    kinds = np.array(f.identity_kind, dtype=object) if n else np.empty(0, dtype=object)
    cats = np.array(f.category if f.category else [None] * n, dtype=object).reshape(n)
    lta = np.isin(cats, list(LIGHTER_THAN_AIR))
    llr_id = np.select(
        [lta, kinds == "icao", (kinds == "aprs") | (kinds == "sonde") | (kinds == "wspr")],
        [4.0, -4.0, 4.0],
        0.0,
    )
    llr_wind = f.wind.llr if f.wind is not None else np.zeros(n)
    total = cfg.prior_log_odds + llr_speed + llr_alt + llr_man + llr_drift + llr_id + llr_wind
    p_balloon = 1.0 / (1.0 + np.exp(-total))
    enough = f.n_updates >= cfg.min_updates
    label = np.where(
        enough & (p_balloon >= cfg.balloon_threshold),
        ObjectClass.BALLOON,
        np.where(
            enough & (p_balloon <= cfg.aircraft_threshold),
            ObjectClass.AIRCRAFT,
            ObjectClass.UNKNOWN,
        ),
    )
    out = []
    for i in range(n):  # reasons are text for people: built at the output edge
        reasons = [
            f"{f.speed_mps[i]:.0f} m/s ground speed: " + _lean(llr_speed[i]),
            f"{f.alt_m[i] / 1000:.1f} km altitude: " + _lean(llr_alt[i]),
        ]
        if llr_man[i]:
            reasons.append(f"manoeuvres (manoeuvre model {f.p_manoeuvre[i]:.2f}): aircraft-like")
        reasons.append(f"drift model probability {f.p_drift[i]:.2f}")
        if lta[i]:
            reasons.append(f"emitter category {cats[i]} (lighter than air): balloon")
        elif kinds[i] == "icao":
            reasons.append("transponder (ICAO address): aircraft-like")
        elif llr_id[i] > 0:
            reasons.append(f"{kinds[i]} telemetry identity: balloon")
        else:
            reasons.append("no transponder or telemetry identity")
        if f.wind is not None:
            why = f.wind.reason(i)
            if why:
                reasons.append(why)
        if not enough[i]:
            reasons.append(f"only {int(f.n_updates[i])} updates: too early to say")
        pb = float(p_balloon[i])
        lab = ObjectClass(int(label[i]))
        prob = (
            pb
            if lab == ObjectClass.BALLOON
            else (1.0 - pb if lab == ObjectClass.AIRCRAFT else max(pb, 1.0 - pb))
        )
        out.append(Classification(lab, prob, {"balloon": pb, "aircraft": 1.0 - pb}, tuple(reasons)))
    return out


def _lean(llr: float) -> str:
    if llr >= 1.0:
        return "balloon-like"
    if llr <= -1.0:
        return "aircraft-like"
    return "either"


def classify_table(
    table: TrackTable,
    model_names: Sequence[str],
    identities: IdentityCodes,
    config: ClassifierConfig | None = None,
    *,
    winds: WindGrid | None = None,
    categories: Sequence[str | None] | None = None,
    wind: WindMatch | None = None,
) -> list[Classification]:
    """Classify the tracker's reported tracks. ``winds`` adds the wind match (each track's
    velocity against the wind at its altitude, velocity 1-sigma bounded by the trace of its
    covariance); ``wind`` gives a wind match computed by the caller instead (the service uses
    the drift model's own velocity); ``categories`` gives each row's emitter category."""
    names = list(model_names)
    p_man = (
        table.mu[:, names.index("aircraft_manoeuvre")]
        if "aircraft_manoeuvre" in names
        else np.zeros(len(table))
    )
    p_drift = table.mu[:, names.index("balloon_drift")] if "balloon_drift" in names else np.zeros(len(table))
    kinds = []
    for code in table.identity.tolist():
        name = identities.name(int(code)) or ""
        kinds.append(name.split(":", 1)[0] if ":" in name else "")
    f = Features(
        speed_mps=np.hypot(table.velocity_enu_mps[:, 0], table.velocity_enu_mps[:, 1]),
        alt_m=table.alt_m,
        climb_mps=table.velocity_enu_mps[:, 2],
        p_manoeuvre=p_man,
        p_drift=p_drift,
        identity_kind=kinds,
        n_updates=table.n_updates,
        category=list(categories) if categories is not None else [],
        wind=wind
        if wind is not None
        else (_wind_of(table, winds) if winds is not None and len(table) else None),
    )
    return classify_features(f, config)


def _wind_of(table: TrackTable, winds: WindGrid) -> WindMatch:
    # per-axis horizontal velocity sigma bounded from above by the trace of the velocity
    # covariance (frame-invariant; the vertical variance makes it conservative)
    sigma = np.sqrt(np.trace(table.P[:, 3:, 3:], axis1=1, axis2=2) / 2.0)
    return wind_match(
        winds,
        table.time_s,
        table.lat_deg,
        table.lon_deg,
        table.alt_m,
        table.velocity_enu_mps[:, :2],
        sigma,
    )
