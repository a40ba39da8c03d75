"""What NNC's samples draw with layers and netcanvas has as settings or parts of its own.

Cutout and mixup in the pattern of NNC's resnet-110 samples become the training section's cutout
and mixup; a GAN's training networks (mnist_dcgan) become a generator and a discriminator network; a
weight fed from a Parameter layer becomes the layer's own. Each works on the reader's plain data
(``sdcproj``), says what it changed, and leaves a network that does not follow the pattern as it is.
"""

from __future__ import annotations

import numpy as np

from .nnc_rewrites import number
from .sdcproj import NncLayer, NncLink, NncNetwork, NncProject


def _sources(network: NncNetwork, layer_id: int) -> list[NncLayer]:
    return [network.layers[l.src] for l in network.links if l.dst == layer_id]


def _descendants(network: NncNetwork, ids: set[int]) -> set[int]:
    found, frontier = set(), list(ids)
    while frontier:
        layer_id = frontier.pop()
        for link in network.links:
            if link.src == layer_id and link.dst not in found:
                found.add(link.dst)
                frontier.append(link.dst)
    return found


def _fed(network: NncNetwork) -> list[NncLayer]:
    """The Inputs the dataset feeds."""
    return [l for l in network.layers.values() if l.type == "Input" and l.properties.get("Generator", "None") == "None"]


def _generated(layer: NncLayer, *kinds: str) -> bool:
    return layer.type == "Input" and layer.properties.get("Generator") in kinds


def _relink(network: NncNetwork, layer_id: int, source: NncLayer) -> None:
    """Feed what ``layer_id`` fed from ``source`` instead."""
    network.links = [NncLink(source.id, 0, l.dst, l.dst_pin) if l.src == layer_id else l for l in network.links]


def _remove(network: NncNetwork, removed: set[int]) -> None:
    """Delete layers and every link touching them."""
    network.links = [l for l in network.links if l.src not in removed and l.dst not in removed]
    for gone in removed:
        del network.layers[gone]


def fold_cutout(network: NncNetwork, augmentation: dict, notes: list[str]) -> None:
    """NNC's cutout drawn as layers (its resnet-110-cutout sample) becomes training.augmentation.cutout.

    The pattern: ``Add2(image x RSubScalar(1 - M), noise x M)``, where the mask M is a generated
    constant square Input, padded and shifted at random (Pad, RandomShift) and the noise a generated
    Input. Our cutout erases a square of the same size to zero, which the notes say.
    """
    for add in [l for l in network.layers.values() if l.type == "Add2"]:
        found = _cutout(network, add)
        if found is None:
            continue
        image, mask, noise, removed = found
        _relink(network, add.id, image)
        _remove(network, removed)
        size = [int(v) for v in mask.properties.get("Size", "1,1").split(",")][-2:]
        augmentation["cutout"] = {"size": max(size)}
        notes.append(f"{add.name}: cutout drawn as layers became training.augmentation.cutout (size {max(size)}); "
                     f"the square is erased to zero, not filled with {noise.properties.get('Generator')} noise x "
                     f"{noise.properties.get('GeneratorMultiplier')} as in NNC")


def _cutout(network: NncNetwork, add: NncLayer):
    """(image source, mask Input, noise Input, layers to remove) where ``add`` ends NNC's cutout pattern."""
    parts = _sources(network, add.id)
    if len(parts) != 2 or any(p.type != "Mul2" for p in parts):
        return None
    for kept, filled in (parts, parts[::-1]):
        kept_in, filled_in = _sources(network, kept.id), _sources(network, filled.id)
        inverse = next((l for l in kept_in if l.type == "RSubScalar" and number(l.properties.get("Value", "0")) == 1),
                       None)
        if inverse is None or len(kept_in) != 2 or len(filled_in) != 2:
            continue
        image = next(l for l in kept_in if l is not inverse)
        mask = _sources(network, inverse.id)
        noise = [l for l in filled_in if _generated(l, "Normal", "Uniform", "Constant")]
        if len(mask) != 1 or mask[0] not in filled_in or len(noise) != 1:
            continue
        chain, square = [mask[0]], mask[0]
        while square.type in ("RandomShift", "Pad") and len(_sources(network, square.id)) == 1:
            square = _sources(network, square.id)[0]
            chain.append(square)
        if _generated(square, "Constant") and any(l.type == "RandomShift" for l in chain):
            return image, square, noise[0], {add.id, kept.id, filled.id, inverse.id, noise[0].id, *(l.id for l in chain)}
    return None


def fold_mixup(nnc: NncProject, trained: str, augmentation: dict, notes: list[str]) -> None:
    """NNC's mixup drawn as layers (its resnet-110-mixup sample) becomes training.augmentation.mixup.

    The pattern: a second network that another optimizer runs (SetData) writes a second batch of images
    and labels to WorkingMemory layers; the trained network mixes its images with them by weight
    lambda = Sigmoid(a generated Normal Input x sigma) and its losses by the same weight. The writing
    network and its optimizer are dropped, the mixing layers with them; lambda's distribution becomes
    Beta(alpha, alpha) with the same variance. Our mixup pairs the samples of one batch.
    """
    network = nnc.networks.get(trained)
    memories = {l.id for l in network.layers.values() if l.type == "WorkingMemory"} if network else set()
    weights = [l for l in network.layers.values() if _generated(l, "Normal")
               and any(c.type == "Sigmoid" for c in network.layers.values() if l in _sources(network, c.id))] \
        if memories else []
    writers = [n for n in nnc.networks.values() if n is not network and any(
        l.type == "WorkingMemory" and _sources(n, l.id) for l in n.layers.values())]
    if len(weights) != 1 or len(writers) != 1:
        return
    weight = weights[0]
    weighted, remembered = _descendants(network, {weight.id}), _descendants(network, memories)
    losses = {l.id for l in network.layers.values() if "T.Dataset" in l.properties}
    adds = [network.layers[i] for i in weighted & remembered if network.layers[i].type == "Add2"
            and _descendants(network, {i}) & losses]
    if len(adds) != 1:
        return
    plain = [m for m in _sources(network, adds[0].id) if m.type == "Mul2" and m.id not in remembered]
    image = [l for m in plain for l in _sources(network, m.id) if l.id not in weighted]
    if len(image) != 1:
        return
    _relink(network, adds[0].id, image[0])
    # Taken after the relinking: what the weight and the memories reach now is the mixing alone.
    _remove(network, {weight.id, *memories} | _descendants(network, {weight.id}) | _descendants(network, memories))
    del nnc.networks[writers[0].name]
    nnc.optimizers[:] = [o for o in nnc.optimizers if o.get("Optimizer_NetworkName") != writers[0].name]
    sigma = number(weight.properties.get("GeneratorMultiplier", "1"))
    alpha = round(_beta_alpha(sigma), 3)
    augmentation["mixup"] = {"alpha": alpha}
    notes.append(f"{trained}: mixup drawn as layers (network {writers[0].name} writing WorkingMemory, weight "
                 f"Sigmoid(N(0, {sigma:g}^2))) became training.augmentation.mixup alpha {alpha:g}, a Beta weight of the "
                 "same variance; samples are paired within a batch, not with a second pass over the data")


def _beta_alpha(sigma: float) -> float:
    """The alpha of the Beta(alpha, alpha) whose variance is that of Sigmoid(N(0, sigma^2))."""
    z, w = np.polynomial.hermite_e.hermegauss(80)
    weight = 1 / (1 + np.exp(-sigma * z))
    variance = float(np.sum(w * (weight - 0.5) ** 2) / np.sum(w))
    return (1 / (4 * variance) - 1) / 2


def split_gan(nnc: NncProject, notes: list[str]) -> bool:
    """NNC's GAN as our GAN project: a ``generator`` and a ``discriminator`` network; False if it is not one.

    NNC draws a GAN as trained networks that share weights by ParameterScope, each with its own
    optimizer (its mnist_dcgan sample: two): one, fed real images, trains the discriminator on them
    (and on generated ones); another trains the generator through a frozen copy of the discriminator
    (LRateMultiplier = 0). The generator is the network without a loss that a generated latent input
    feeds (the executor's, first); the discriminator is what the real images reach in the network
    they feed. A conditional GAN (mnist_dcgan_with_label: three optimizers, the discriminator trained
    on real and on generated images by two) also feeds both networks a dataset variable, the class
    label: the generator's fed Inputs are that condition, and the discriminator keeps the Inputs that
    read the same variables, under the generator's names, which is how our GAN training tells them.
    Our GAN training does the alternation itself, feeding the latent input N(0, 1) and scoring real
    images as 1.
    """
    trained = [nnc.networks.get(o.get("Optimizer_NetworkName", "")) for o in nnc.optimizers]
    if len(trained) not in (2, 3) or None in trained:
        return False
    executed = [nnc.networks.get(e.get("Executor_NetworkName", "")) for e in nnc.executors]
    generators = [n for n in executed + list(nnc.networks.values()) if n is not None and n not in trained
                  and any(_generated(l, "Normal", "Uniform") for l in n.layers.values())
                  and not any("T.Dataset" in l.properties for l in n.layers.values())]
    if not generators:
        return False
    generator = generators[0]
    conditions = {_variable(l): l for l in _fed(generator)}
    d_trainers = [n for n in trained if any(_variable(l) not in conditions for l in _fed(n))]
    if len(d_trainers) != 1 or len(trained) != 2 + bool(conditions):
        return False
    source = d_trainers[0]
    reals = [l for l in _fed(source) if _variable(l) not in conditions]
    labels = [l for l in _fed(source) if _variable(l) in conditions]
    if len(reals) != 1 or {_variable(l) for l in labels} != set(conditions):
        return False
    real = reals[0]
    kept = {real.id, *(l.id for l in labels)} | _descendants(source, {real.id, *(l.id for l in labels)})
    discriminator = NncNetwork("discriminator", {i: source.layers[i] for i in source.layers if i in kept},
                               [l for l in source.links if l.src in kept and l.dst in kept])
    losses = [l for l in discriminator.layers.values() if "T.Dataset" in l.properties]
    if len(losses) != 1:
        return False
    loss = losses[0]
    loss.properties["T.Generator"] = "None"
    for label in labels:
        label.name = conditions[_variable(label)].name  # one node id in both networks: our condition
    for layer in generator.layers.values():
        if _generated(layer, "Normal", "Uniform"):
            layer.properties["Generator"] = "None"
            layer.properties.pop("Dataset", None)  # the GAN training feeds it, not the dataset
        if layer.type == "BatchNormalization":
            layer.properties["BatchStat"] = "True"
    others = [n for n in nnc.networks if n != generator.name]
    swapped = " (NNC's sample swaps the two labels)" if number(loss.properties.get("T.GeneratorMultiplier", "1")) == 0 \
        else ""
    condition = (f"; both read the condition {', '.join(l.name for l in conditions.values())} (dataset variable "
                 f"{', '.join(conditions)}): the real images' own, and for each generated image a random training "
                 "row's, given to the discriminator with it (NNC's sample gives it the label of the real image "
                 "beside it: the same class frequencies)" if conditions else "")
    notes.append(f"a GAN: the generator is network {generator.name}, the discriminator what the real images "
                 f"({real.name}) reach in {source.name}; NNC's training networks ({', '.join(others)}) are what "
                 "training.mode gan does: it feeds the latent input N(0, 1), scores real images as 1 and generated "
                 f"ones as 0{swapped}, and trains the generator to make them score 1{condition}")
    _gan_optimizers(nnc, source, notes)
    nnc.networks = {"generator": generator, "discriminator": discriminator}
    generator.name = "generator"
    nnc.optimizers[:] = [o for o in nnc.optimizers if o.get("Optimizer_NetworkName") == source.name]
    return True


def split_vat(nnc: NncProject, notes: list[str]) -> dict | None:
    """NNC's virtual adversarial training as training.mode vat: the settings to add to the training section
    (the unlabeled data, xi and eps), with the networks that drew it dropped; None if it is not one.

    NNC draws VAT (its semi_supervised_learning_VAT sample) as three trained networks sharing the classifier's
    weights by ParameterScope, each with its own optimizer: the classifier with its loss on the labeled data; a
    noise estimation network on the unlabeled data, whose VATNoise scales Gaussian noise to length xi (its
    Epsilon) and keeps the gradient of KLMultinomial(p(x) || p(x + noise)) in a WorkingMemory; and a VAT loss
    network whose VATNoise scales that gradient to length eps and trains on the KL at x plus it. The last two
    are what training.mode vat does. Networks that are not trained lose their VAT layers (VATNoise, its
    WorkingMemory, all they reach and all that only feeds them), and are dropped when nothing else is left.
    """
    trained = {o.get("Optimizer_NetworkName", ""): o for o in nnc.optimizers}
    if not trained.keys() <= nnc.networks.keys():
        return None
    noises = [(name, layer, kind) for name in trained for layer, kind in _vat_noises(nnc.networks[name])]
    estimating = [(name, layer) for name, layer, kind in noises if kind == "Input"]
    perturbing = [(name, layer) for name, layer, kind in noises if kind == "WorkingMemory"]
    classifiers = [name for name in trained if name not in {n for n, _, _ in noises}]
    if len(noises) != 2 or len(estimating) != 1 or len(perturbing) != 1 or len(classifiers) != 1 or \
            estimating[0][0] == perturbing[0][0]:
        return None
    (estimator, probe), (vat_loss, perturbation) = estimating[0], perturbing[0]
    unlabeled = _fed(nnc.networks[vat_loss])
    datasets = {d.get("Name", ""): d for d in nnc.datasets}
    source = datasets.get(trained[vat_loss].get("Optimizer_DatasetName", ""), {})
    classifier = nnc.networks[classifiers[0]]
    targets = {l.properties["T.Dataset"] for l in classifier.layers.values() if "T.Dataset" in l.properties}
    data = [l for l in _fed(classifier) if _variable(l) not in targets]
    if len(unlabeled) != 1 or len(data) != 1 or not source.get("URI"):
        return None
    # The import's own naming rules, so that the names agree with what it makes (imported here: it imports us).
    from .nnc_import import _data_path, _identifier

    vat: dict = {"unlabeled": _data_path(source["URI"]), "xi": number(probe.properties.get("Epsilon", "1")),
                 "eps": number(perturbation.properties.get("Epsilon", "1"))}
    if _variable(unlabeled[0]) != _variable(data[0]):
        vat["inputs"] = {_identifier(data[0].name): _variable(unlabeled[0])}
    dropped = [estimator, vat_loss]
    stripped = []
    for name, network in nnc.networks.items():
        if name in trained or not any(l.type == "VATNoise" for l in network.layers.values()):
            continue
        _remove(network, _vat_part(network))
        (stripped if any(l.type != "Comment" for l in network.layers.values()) else dropped).append(name)
    for name in dropped:
        del nnc.networks[name]
    nnc.optimizers[:] = [o for o in nnc.optimizers if o.get("Optimizer_NetworkName") not in dropped]
    nnc.executors[:] = [e for e in nnc.executors if e.get("Executor_NetworkName") not in dropped]
    kept = f"; {', '.join(stripped)} kept its prediction, not its adversarial noise output" if stripped else ""
    notes.append(f"virtual adversarial training: networks {', '.join(dropped)} (the adversarial direction from "
                 f"{probe.name} of Epsilon {vat['xi']:g} on Gaussian noise, the loss at {perturbation.name} of Epsilon "
                 f"{vat['eps']:g}, on dataset {source.get('Name')}) are what training.mode vat does, with xi "
                 f"{vat['xi']:g} and eps {vat['eps']:g}{kept}. It takes one optimizer step per batch on "
                 f"{classifiers[0]}'s loss plus the VAT loss (NNC steps each network's optimizer in turn), and the "
                 "unlabeled passes leave the batch-normalisation running statistics alone")
    return {"mode": "vat", "vat": vat}


def _vat_noises(network: NncNetwork) -> list[tuple[NncLayer, str]]:
    """Each VATNoise layer with the type of what its first pin reads: a generated Input (the random probe, of
    length xi) or a WorkingMemory (the kept gradient, scaled to length eps)."""
    found = []
    for layer in network.layers.values():
        if layer.type != "VATNoise":
            continue
        feeds = [network.layers[l.src] for l in network.links if l.dst == layer.id and l.dst_pin == 0]
        kind = "Input" if feeds and _generated(feeds[0], "Normal", "Uniform") else \
            "WorkingMemory" if feeds and feeds[0].type == "WorkingMemory" else "other"
        found.append((layer, kind))
    return found


def _vat_part(network: NncNetwork) -> set[int]:
    """The VATNoise and WorkingMemory layers, all they reach, and every layer whose outputs go only there."""
    part = {l.id for l in network.layers.values() if l.type in ("VATNoise", "WorkingMemory")}
    part |= _descendants(network, part)
    consumers: dict[int, set[int]] = {}
    for link in network.links:
        consumers.setdefault(link.src, set()).add(link.dst)
    grown = True
    while grown:
        feeding = {i for i, dst in consumers.items() if i not in part and dst <= part}
        part |= feeding
        grown = bool(feeding)
    return part


def _variable(layer: NncLayer) -> str:
    """The dataset variable an Input reads."""
    return layer.properties.get("Dataset", layer.name)


_SOLVER = ("SolverName", "WeightDecay", "LearningRateMultiplier", "LearningRateScheduler")


def _gan_optimizers(nnc: NncProject, source: NncNetwork, notes: list[str]) -> None:
    """Say how NNC's optimizers of a GAN become ours: one setting, the real images' optimizer's, for both networks."""
    def solver(optimizer: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in optimizer.items() if k in _SOLVER or k.startswith("SolverParameter")}

    own = next(o for o in nnc.optimizers if o.get("Optimizer_NetworkName") == source.name)
    named = ", ".join(f"{o.get('Optimizer_Name')} ({o.get('Optimizer_NetworkName')})" for o in nnc.optimizers)
    same = all(solver(o) == solver(own) for o in nnc.optimizers)
    if len(nnc.optimizers) == 2 and same:
        return  # one optimizer each, alike: nothing to say beyond the GAN itself
    notes.append(f"the GAN's optimizers {named}: training.mode gan steps the generator and the discriminator once "
                 "per batch each (the discriminator on real and generated images together), both with "
                 f"{own.get('Optimizer_Name')}'s solver" + ("" if same else ", as the others differ from it"))


_WEIGHTED = ("Convolution", "Deconvolution", "Affine")


_SCALAR = ("AddScalar", "MulScalar", "RSubScalar")


def own_weights(network: NncNetwork, notes: list[str]) -> None:
    """A Convolution, Deconvolution or Affine whose weight is an input fed by a Parameter layer, through
    scalar arithmetic at most, gets its own weight instead: both are a free parameter of the same shape
    (only the initial value differs, which the notes say)."""
    for layer in [l for l in network.layers.values() if l.type in _WEIGHTED]:
        feeds = [l for l in network.links if l.dst == layer.id]
        # The weight pin is 1 where NNC numbers the pins; otherwise the links come in pin order.
        weights = [l for l in feeds if l.dst_pin == 1] or feeds[1:]
        if len(feeds) != 2 or len(weights) != 1:
            continue
        chain, source = [], network.layers[weights[0].src]
        while source.type in _SCALAR and len(_sources(network, source.id)) == 1:
            chain.append(source)
            source = _sources(network, source.id)[0]
        if source.type != "Parameter" or any(l.src in {source.id, *(c.id for c in chain)} and l.dst != layer.id
                                              and l.dst not in {c.id for c in chain} for l in network.links):
            continue
        removed = {source.id, *(c.id for c in chain)}
        network.links = [l for l in network.links if l.src not in removed and l.dst not in removed]
        for gone in removed:
            del network.layers[gone]
        notes.append(f"{network.name} / {layer.name}: its weight, fed from {source.name} through "
                     f"{' and '.join(c.name for c in reversed(chain)) or 'nothing'}, is its own weight here "
                     "(a free parameter of the same shape; its initial value is drawn as for any such layer)")
