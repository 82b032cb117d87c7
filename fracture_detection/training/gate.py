"""The body-part model's gate: which images get a finding at all, and whether a cast or implant shows.

An image is analysed only when all of these hold (see :func:`decisions.decide_body_parts`):

* it is one of the three parts: P(elbow) + P(hand) + P(shoulder) reaches ``target_cut``. The
  *other* class holds every non-target region seen in training and the non-radiographs; the cut,
  not "other is the most probable class", decides, because a hand film that shows the wrist and
  forearm, or an elbow with the humerus and a plate, is still that part's film;
* the image is not *unfamiliar*: its out-of-distribution score, a Mahalanobis distance of the
  model's pooled features to the nearest of the three parts' training images, is at most
  ``ood_threshold``.  This check needs no example of what it rejects, so it also works for
  anatomy no model here has seen (chest, skull, knee, children's films);
* the model can tell the part: the best part's share of the three parts' probability (its
  *confidence*, what the app shows) reaches ``part_floor``.

The distance uses the class means and one shared covariance, modelled as probabilistic PCA
(the ``components`` largest directions with their own variances, one variance for the rest):
it stays well defined with fewer training images than feature dimensions, and the small
directions, where unfamiliar images often differ most, still count.  It is built from
built-in Keras layers with fixed weights (:func:`mahalanobis_layers`), so the saved model
computes it, loads in safe mode and exports to LiteRT.

Thresholds are chosen on validation images of the three parts only (:func:`choose_gate`): together
the checks may reject at most :data:`MAX_TARGET_REJECTION` of them; the out-of-distribution score
and the part floor may each spend at most their share of that budget (:data:`SHARES`), and the target
cut takes the rest, so no check is left at zero because another spent the budget first.  With
``groups`` (e.g. each film's region and source) the budget holds in every group too: no region, and no
source's films of a region, pays for the others.  For a model that learns views (finger, hand, wrist,
forearm, elbow, shoulder) the checks work on regions (``regions``: each class's region): a region's
probability is the sum of its views', so hand versus wrist, a soft line, is never a doubt.

Also here: the appliance head (P(cast or implant) from the same pooled features, a logistic
regression stored as one Dense layer), and the other scores compared with the Mahalanobis
distance on validation (:func:`candidate_scores`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..chain import decisions

MAX_TARGET_REJECTION = 0.01   # at most this share of elbow/hand/shoulder images may be rejected, all checks together
# Of that budget, at most, for the OOD score and the part floor; the target cut takes what they leave.
# Chosen on validation (the bundled model's 454 elbow, hand and shoulder images): every validation
# image the OOD score or the floor takes costs the target cut about 8 points of refused finger,
# forearm, humerus and wrist films, so each may take a tenth of the budget (there: none, which puts
# each at the edge of the validation images, not at zero).
SHARES = {"unfamiliar": 0.1, "doubt": 0.1}
COMPONENTS = 64               # principal directions of the shared covariance with their own variance
OUTPUT_NAMES = ("probabilities", "ood_score", "appliance_probability")  # the body-part model's outputs, in order


# --- the Mahalanobis distance --------------------------------------------------------

@dataclass
class Mahalanobis:
    """Class means and a shared probabilistic-PCA covariance of pooled features."""
    centre: np.ndarray       # (d,) mean of the class means
    means: np.ndarray        # (classes, d) class means minus the centre
    basis: np.ndarray        # (d, k) principal directions of the within-class scatter
    variances: np.ndarray    # (k,) their variances
    residual: float          # the variance of every other direction

    @property
    def dimension(self) -> int:
        return len(self.centre)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Squared distance to the nearest class mean, divided by the feature dimension (about 1
        for a typical training image of the three parts)."""
        h = np.asarray(features, dtype="float64") - self.centre
        out = np.full(len(h), np.inf)
        for m in self.means:
            diff = h - m
            proj = diff @ self.basis
            d2 = (proj ** 2 / self.variances).sum(1) + ((diff ** 2).sum(1) - (proj ** 2).sum(1)) / self.residual
            out = np.minimum(out, d2)
        return out / self.dimension

    def to_meta(self) -> dict:
        return {"components": int(self.basis.shape[1]), "residual_variance": float(self.residual),
                "dimension": self.dimension}


def fit_mahalanobis(features: np.ndarray, labels: np.ndarray, components: int = COMPONENTS) -> Mahalanobis:
    """Class means and shared covariance of ``features`` (rows) by class ``labels``."""
    x = np.asarray(features, dtype="float64")
    labels = np.asarray(labels)
    classes = np.unique(labels)
    means = np.stack([x[labels == c].mean(0) for c in classes])
    centre = means.mean(0)
    within = x - means[np.searchsorted(classes, labels)]
    _, s, vt = np.linalg.svd(within, full_matrices=False)
    eig = s ** 2 / len(x)
    total = float((within ** 2).sum() / len(x))
    rank = int((eig > eig[0] * 1e-9).sum()) if len(eig) and eig[0] > 0 else 0
    k = max(1, min(components, rank - 1, len(x) - len(classes)))  # leave some variance to the residual
    rest = max(total - float(eig[:k].sum()), 0.0) / max(1, x.shape[1] - k)
    residual = max(rest, total / x.shape[1] * 1e-3, 1e-12)  # a floor keeps unseen directions finite
    variances = np.maximum(eig[:k], residual * (1 + 1e-6))
    return Mahalanobis(centre, means - centre, vt[:k].T.copy(), variances, residual)


def mahalanobis_layers(pooled, gate: Mahalanobis):
    """The score of :meth:`Mahalanobis.scores` as Keras layers on the pooled-features tensor
    (built-in layers with fixed weights: safe-mode loadable, exported to LiteRT with the model).

    With M the inverse covariance, ``(h - m)' M (h - m) = h'Mh - 2 m'Mh + m'Mm``, where
    ``h'Mh = |h|^2 / r - sum_j (v_j'h)^2 (1/r - 1/l_j)`` (``r`` the residual variance, ``l_j``
    and ``v_j`` the principal variances and directions)."""
    from keras import layers
    d, k = gate.basis.shape
    h = layers.Normalization(mean=gate.centre.astype("float32"), variance=np.ones(d, "float32"),
                             name="ood_centre")(pooled)
    project = layers.Dense(k, use_bias=False, name="ood_project")
    u = project(h)
    project.set_weights([(gate.basis * np.sqrt(1 / gate.residual - 1 / gate.variances)).astype("float32")])
    principal = layers.Dense(1, use_bias=False, name="ood_principal")
    q1 = principal(layers.Multiply(name="ood_project_squared")([u, u]))
    principal.set_weights([-np.ones((k, 1), "float32")])
    norm = layers.Dense(1, use_bias=False, name="ood_norm")
    q2 = norm(layers.Multiply(name="ood_squared")([h, h]))
    norm.set_weights([np.full((d, 1), 1 / gate.residual, "float32")])
    quadratic = layers.Add(name="ood_quadratic")([q1, q2])
    distances = []
    for i, m in enumerate(gate.means):
        mm = m / gate.residual - gate.basis @ ((gate.basis.T @ m) * (1 / gate.residual - 1 / gate.variances))
        linear = layers.Dense(1, name=f"ood_linear_{i}")
        lin = linear(h)
        linear.set_weights([(-2 * mm)[:, None].astype("float32"), np.array([m @ mm], "float32")])
        distances.append(layers.Add(name=f"ood_distance_{i}")([quadratic, lin]))
    nearest = layers.Minimum(name="ood_nearest")(distances) if len(distances) > 1 else distances[0]
    return layers.Rescaling(1.0 / d, name="ood_score")(nearest)


# --- other scores, compared on validation --------------------------------------------

def knn_scores(train: np.ndarray, features: np.ndarray, k: int = 1) -> np.ndarray:
    """1 - cosine similarity to the k-th nearest training feature (features L2-normalised)."""
    a = train / np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
    out = []
    for start in range(0, len(features), 512):
        b = features[start:start + 512]
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        sim = b @ a.T
        out.append(1 - np.sort(sim, axis=1)[:, -k])
    return np.concatenate(out) if out else np.zeros(0)


def energy_scores(logits: np.ndarray, targets: list[int]) -> np.ndarray:
    """Energy over the three parts' logits (-logsumexp): higher is less familiar."""
    z = np.asarray(logits, dtype="float64")[:, targets]
    top = z.max(1)
    return -(top + np.log(np.exp(z - top[:, None]).sum(1)))


def candidate_scores(train_feats, train_y, feats, logits, probs, targets, components=(16, 64, 256)) -> dict:
    """Every out-of-distribution score compared (higher: less like the three parts' training images)."""
    out = {"max_probability": -np.asarray(probs)[:, targets].max(1), "energy": energy_scores(logits, targets)}
    for k in (1, 10):
        out[f"knn_cosine_k{k}"] = knn_scores(train_feats, feats, k)
    for c in components:
        out[f"mahalanobis_ppca_{c}"] = fit_mahalanobis(train_feats, train_y, c).scores(feats)
    return out


# --- thresholds on validation --------------------------------------------------------

def threshold_for(scores: np.ndarray, share: float) -> float:
    """The smallest threshold (reject when score > threshold) that rejects at most ``share`` of
    ``scores`` (validation images of the three parts)."""
    s = np.sort(np.asarray(scores, dtype="float64"))[::-1]
    if not len(s):
        return float("inf")
    k = int(np.floor(share * len(s)))
    return float(s[k]) if k < len(s) else float(s[-1])


def _groups(n: int, groups) -> list[np.ndarray]:
    """Row masks of each group (one group of every row without ``groups``)."""
    if groups is None:
        return [np.ones(n, dtype=bool)]
    g = np.asarray(groups)
    return [g == name for name in sorted(set(g.tolist()))]


def _limit(budget: float, n: int) -> int:
    return int(np.floor(budget * n + 1e-9))


def group_threshold(scores: np.ndarray, share: float, groups=None) -> float:
    """:func:`threshold_for` in every group at once: the threshold that rejects at most ``share`` of
    each group's ``scores`` (the highest of the groups' own)."""
    scores = np.asarray(scores, dtype="float64")
    return max(threshold_for(scores[m], share) for m in _groups(len(scores), groups))


def choose_part_floor(probs: np.ndarray, reject_index: int, share: float, regions=None, groups=None) -> float:
    """The highest floor on the region's confidence (its share of the target regions' probability; 0.99
    down to 0.01 by 0.01) below which at most ``share`` of ``probs`` (validation images of the target
    regions), and of each group's, fall.  The best of three regions has at least a third of their sum,
    so the floor is never zero by construction; it is what a doubt between the regions may cost."""
    rule = decisions.BodyPartRule(reject_index=reject_index, part_floor=0.0, regions=regions)
    confidence = decisions.part_scores(probs, rule)[1]
    masks = _groups(len(confidence), groups)
    for floor in np.round(np.arange(0.99, 0.0, -0.01), 2):
        if all((confidence[m] < floor).sum() <= _limit(share, m.sum()) for m in masks):
            return float(floor)
    return 0.0


def choose_target_cut(probs: np.ndarray, reject_index: int, already: np.ndarray, limit: int, groups=None,
                      budget: float | None = None) -> float:
    """The highest cut on the target regions' summed probability (an image below it is *another
    region*) at which, with the images ``already`` rejected by the other checks, at most ``limit``
    of ``probs`` (validation images of the target regions) are rejected, and with ``groups`` at most
    ``budget`` of each group's.  An image exactly on the cut is kept; 0 when the other checks alone
    spend the budget."""
    total = decisions.part_scores(probs, decisions.BodyPartRule(reject_index=reject_index, target_cut=0.0))[2]
    masks = _groups(len(total), groups) if groups is not None else []
    cut = 0.0
    for c in np.unique(total):
        rejected = already | (total < c)
        if rejected.sum() > limit or any(rejected[m].sum() > _limit(budget, m.sum()) for m in masks):
            break
        cut = float(c)
    return cut


@dataclass
class GateChoice:
    target_cut: float
    part_floor: float
    ood_threshold: float
    max_target_rejection: float
    shares: dict
    validation_target_rejected: float
    n_validation_targets: int
    budget_by: str = "pooled"            # the groups the budget held in too (e.g. "region_source")
    validation_by_group: dict | None = None   # per group: validation films and how many were turned away

    def rule(self, reject_index: int, regions=None) -> decisions.BodyPartRule:
        return decisions.BodyPartRule(reject_index=reject_index, target_cut=self.target_cut,
                                      part_floor=self.part_floor, ood_threshold=self.ood_threshold,
                                      regions=None if regions is None else tuple(regions))


def choose_gate(val_probs: np.ndarray, val_scores: np.ndarray, reject_index: int,
                budget: float = MAX_TARGET_REJECTION, shares: dict | None = None, regions=None, groups=None,
                budget_by: str | None = None) -> GateChoice:
    """The three checks on validation images of the target regions, within one budget: the
    out-of-distribution threshold and the part floor each at most their share of it (:data:`SHARES`),
    then the target cut as high as the rest of the budget allows (images the other two already
    reject are not counted twice).  ``regions``: each class's region (a model that learns views);
    ``groups``: a label per image (its region, or region and source) in each of which the budget and
    the shares hold too; ``budget_by`` says what those groups are, for the metadata."""
    shares = dict(SHARES if shares is None else shares)
    probs = np.asarray(val_probs, dtype=float)
    scores = np.asarray(val_scores, dtype=float)
    limit = _limit(budget, len(probs))
    ood = group_threshold(scores, budget * shares["unfamiliar"], groups)
    floor = choose_part_floor(probs, reject_index, budget * shares["doubt"], regions, groups)
    confidence = decisions.part_scores(probs, decisions.BodyPartRule(reject_index=reject_index, part_floor=floor,
                                                                     regions=regions))[1]
    already = ~(scores <= ood) | (confidence < floor)
    cut = choose_target_cut(probs, reject_index, already, limit, groups, budget)
    choice = GateChoice(cut, floor, ood, budget, shares, float("nan"), len(probs),
                        budget_by or ("pooled" if groups is None else "groups"))
    reasons = decisions.decide_body_parts(probs, choice.rule(reject_index, regions), scores)[1]
    refused = np.array([r is not None for r in reasons], dtype=bool)
    choice.validation_target_rejected = float(refused.mean()) if len(refused) else float("nan")
    if groups is not None:
        g = np.asarray(groups)
        choice.validation_by_group = {str(name): {"n": int((g == name).sum()), "rejected": int(refused[g == name].sum())}
                                      for name in sorted(set(g.tolist()))}
    return choice


TRADE_OFF_SHARES = (0.01, 0.02, 0.05, 0.10)   # shares of the target films a higher cut would turn away


def cut_trade_off(probs: np.ndarray, reject_index: int, target: np.ndarray, groups: np.ndarray, shown: np.ndarray,
                  budget: float = MAX_TARGET_REJECTION, regions=None, shares=TRADE_OFF_SHARES, films=None,
                  cut: float | None = None) -> dict:
    """What the target cut costs and buys, on validation images (rows of ``probs``): ``target`` marks the
    target regions' images, ``groups`` their budget group (e.g. ``elbow/roboflow``), ``shown`` what every
    image shows (its region, or for *other* humerus, leg, ...).

    ``binding``: the group that holds the cut down, the cut alone considered: the one whose own budget
    (rounded down) allows the lowest cut; its films, how many it may turn away, and its lowest target
    scores (P of the target regions together), with ``films`` (names) where given.  ``levels``: for the
    chosen ``cut`` (where given) and then for each share of the target images a higher cut would turn away
    (pooled), that cut, how many target images it turns away, the worst group's share, and the share of
    each non-target thing refused by the cut alone."""
    total = decisions.part_scores(probs, decisions.BodyPartRule(reject_index=reject_index, target_cut=0.0,
                                                                regions=None if regions is None else tuple(regions)))[2]
    target, groups, shown = np.asarray(target, bool), np.asarray(groups), np.asarray(shown)
    t_total, t_groups = total[target], groups[target]
    allow = {}
    for name in sorted(set(t_groups.tolist())):
        s = np.sort(t_total[t_groups == name])
        k = _limit(budget, len(s))
        allow[name] = (float(s[k]) if k < len(s) else float("inf"), len(s), k, s)
    if not allow:
        return {}
    name = min(allow, key=lambda g: allow[g][0])
    allowed, n, k, s = allow[name]
    binding = {"group": str(name), "n": n, "may_turn_away": k, "allows_cut": allowed,
               "lowest": [float(v) for v in s[:k + 3]]}
    if films is not None:
        in_g = np.nonzero(target & (groups == name))[0]
        order = in_g[np.argsort(total[in_g], kind="stable")][:k + 3]
        binding["lowest_films"] = [str(np.asarray(films)[i]) for i in order]
    others = sorted(set(shown[~target].tolist()))
    levels = []
    cuts = ([(None, float(cut))] if cut is not None else []) + [
        (share, float(np.sort(t_total)[min(int(np.floor(share * len(t_total))), len(t_total) - 1)])) for share in shares]
    for share, c in cuts:
        turned = t_total < c
        worst = max((float(turned[t_groups == g].mean()), str(g)) for g in allow)
        levels.append({"share": share, "cut": c, "target_turned_away": int(turned.sum()),
                       "worst_group": worst[1], "worst_group_share": worst[0],
                       "refused": {o: float((total[~target][shown[~target] == o] < c).mean()) for o in others}})
    return {"binding": binding, "levels": levels, "n_target": int(target.sum()),
            "n_other": {o: int((shown[~target] == o).sum()) for o in others}}


def gate_meta(choice: GateChoice, gate: Mahalanobis) -> dict:
    return {"method": "mahalanobis_ppca", **gate.to_meta(), **asdict(choice)}


# --- the appliance head ---------------------------------------------------------------

APPLIANCE = "cast or implant"


def fit_appliance(features: np.ndarray, labels: np.ndarray, c: float = 0.1):
    """Logistic regression of P(cast or implant) on standardised pooled features; returns
    ``(weights (d,), bias)`` on the raw features."""
    from sklearn.linear_model import LogisticRegression
    x = np.asarray(features, dtype="float64")
    mu, sd = x.mean(0), x.std(0) + 1e-6
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    clf.fit((x - mu) / sd, labels)
    w = clf.coef_[0] / sd
    return w, float(clf.intercept_[0] - (mu * w).sum())


def appliance_probability(features: np.ndarray, head) -> np.ndarray:
    w, b = head
    return 1 / (1 + np.exp(-(np.asarray(features, dtype="float64") @ w + b)))


def appliance_layer(pooled, head):
    from keras import layers
    w, b = head
    dense = layers.Dense(1, activation="sigmoid", name="appliance_probability")
    out = dense(pooled)
    dense.set_weights([np.asarray(w, "float32")[:, None], np.array([b], "float32")])
    return out

