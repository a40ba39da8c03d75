"""A search over networks and training settings: declared ranges, samplers, pruning by successive halving."""

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphcompiler as gc
from conftest import mlp_search_project
from graphcompiler import GraphError
from runtime import hyperparameters as hp
from runtime import search
from runtime.settings import TRAINING, search_settings

SPACE = {"optimizer.lr": {"low": 0.0001, "high": 0.1, "log": True}, "batch_size": {"choices": [16, 32, 64]},
         "optimizer.weight_decay": {"low": 0.0, "high": 0.001}, "augmentation.rotate": {"low": 0, "high": 15},
         "augmentation.shift": {"low": 0, "high": 3}, "optimizer.type": {"choices": ["Adam", "SGD"]},
         "augmentation.flip_x": {"choices": [True, False]}}


@pytest.fixture(scope="module")
def project_file(tmp_path_factory) -> Path:
    return mlp_search_project(tmp_path_factory.mktemp("space"), trial_epochs=2)


def _searched(project_file: Path, name: str, **section) -> Path:
    """The MLP project with its search section updated, saved beside it."""
    project = gc.load(project_file)
    project.sections["search"].update(section)
    gc.save(project, project_file.parent / name)
    return project_file.parent / name


@pytest.mark.parametrize("space, says", [
    ({"optimizer.lr": {"low": 0, "high": 0.1, "log": True}}, "optimizer.lr: a log scale needs low above 0"),
    ({"optimizer.lr": {"low": 0.1, "high": 0.01}}, "optimizer.lr: low (0.1) must be below high (0.01)"),
    ({"optimizer.lr": {"low": -1, "high": 0.1}}, "optimizer.lr: low: expected a number >= 0.0, got -1"),
    ({"optimizer.type": {"choices": ["Adam", "Lion"]}}, "optimizer.type: choices: expected one of SGD, Adam"),
    ({"optimizer.type": {"low": 0, "high": 1}}, "optimizer.type: it is one of SGD, Adam"),
    ({"batch_size": {"choices": [32, 0]}}, "batch_size: choices: expected a positive int, got 0"),
    ({"batch_size": {"choices": [32]}}, "choices: expected a list of at least two values"),
    ({"augmentation.rotate": {"low": 0, "high": 400}}, "high: expected a number in [0.0, 180.0], got 400"),
    ({"epochs": {"low": 1, "high": 9}}, "epochs: the search sets it for every candidate: use search.trial_epochs"),
    ({"device": {"choices": ["cpu", "cuda"]}}, "device: it says what a run is or where it runs"),
    ({"optimizer.leaning_rate": {"low": 0.1, "high": 1}}, "not a training setting the search can vary; these can:"),
    ({"optimizer.lr": {"low": 0.001, "high": 0.1, "step": 2}}, "unknown key 'step'"),
])
def test_a_range_outside_what_training_allows_is_refused_naming_it(space, says):
    project = gc.Project(name="p", networks={}, sections={"search": {"hyperparameters": space}})
    with pytest.raises(GraphError) as caught:
        search_settings(project)
    assert str(caught.value).startswith("search.hyperparameters: ") and says in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(sorted(SPACE)))
def test_drawn_and_mutated_settings_stay_in_their_ranges_and_pass_training(seed, path):
    rng = random.Random(seed)
    space = hp.parse_space(SPACE, TRAINING)
    r = space[path]
    value = r.draw(rng)
    for _ in range(5):
        moved = r.mutate(value, rng)
        for v in (value, moved):
            assert r.field.check(v) == v
            assert v in r.choices if r.choices else r.low <= v <= r.high
        assert moved != value or (not r.choices and r.low == r.high)
        value = moved
    # What the search applies is what training then reads.
    training = hp.apply({"optimizer": {"lr": 0.5}}, {path: value})
    assert hp.current(training, space)[path] == value


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=20), st.integers(2, 4))
def test_with_equal_costs_pruning_keeps_the_best_nth_as_optunas_successive_halving(errors, reduction):
    mine, others = errors[0], errors[1:]
    keep = max(1, len(errors) // reduction)
    expected = mine <= sorted(errors)[keep - 1]
    assert search._promotable((mine, 100), [(e, 100) for e in others], reduction) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.integers(1, 5)), min_size=1, max_size=20), st.integers(2, 4))
def test_pruning_never_stops_a_candidate_on_the_front_at_its_rung(entries, reduction):
    mine, others = entries[0], entries[1:]
    dominated = any(e <= mine[0] and c <= mine[1] and (e, c) != mine for e, c in others)
    if not dominated:
        assert search._promotable(mine, others, reduction)


def test_pruned_trials_keep_their_partial_curve_stay_off_the_front_and_a_resumed_search_prunes_on(project_file,
                                                                                                 tmp_path):
    # Learning rate 0 never learns: after one epoch it trails the base network, which trained at 0.001.
    pinned = _searched(project_file, "pruned.graph.yaml", structure=False, pruning={"reduction": 2},
                       hyperparameters={"optimizer.lr": {"choices": [0.001, 0.0]},
                                        "batch_size": {"choices": [16, 32, 64]}})
    folder = tmp_path / "s"
    search.create(gc.load(pinned), folder, base_dir=pinned.parent)
    first = search.run(folder, max_trials=1)
    assert [t.state for t in first] == ["complete"] and len(first[0].curve) == 2
    # A new process: all it knows of the base's curve is what the study holds.
    later = []

    def until_pruned(report) -> None:
        later.append(report)

    search.run(folder, on_trial=until_pruned, should_stop=lambda: any(t.state == "pruned" for t in later)
               or len(later) >= 12)
    pruned = [t for t in later if t.state == "pruned"]
    assert pruned, [t.line() for t in later]
    trials = search.reports(folder)
    for t in trials:
        if t.state == "pruned":
            ahead = [u.curve[0] for u in trials if u.number < t.number and u.curve]
            assert len(t.curve) == 1 and t.curve[0] > min(ahead)
            assert "pruned after epoch 1" in t.line() and f"optimizer.lr={t.settings['optimizer.lr']}" in t.line()
        if t.state == "complete":
            assert len(t.curve) == 2 and t.error == t.curve[-1]
    assert all(t.state == "complete" for t in search.pareto(trials))
    trained = [tuple(sorted(t.settings.items())) for t in trials if t.state in ("complete", "pruned")]
    assert len(trained) == len(set(trained)), "a candidate was trained twice"


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_each_sampler_searches_the_declared_settings(project_file, tmp_path, sampler):
    space = {"optimizer.lr": {"low": 0.0005, "high": 0.05, "log": True}, "batch_size": {"choices": [16, 32, 64]}}
    file = _searched(project_file, f"{sampler}.graph.yaml", sampler=sampler, structure=sampler == "random",
                     hyperparameters=space, trial_epochs=1)
    folder = tmp_path / "s"
    search.create(gc.load(file), folder, base_dir=file.parent)
    trials = search.run(folder, max_trials=4)
    ranges = hp.parse_space(space, TRAINING)
    drawn = [t for t in trials if t.number > 0 and t.state != "failed"]
    assert drawn and all(ranges[p].low <= t.settings[p] <= ranges[p].high if not ranges[p].choices
                         else t.settings[p] in ranges[p].choices for t in drawn for p in space)
    assert len({t.settings["optimizer.lr"] for t in drawn}) == len(drawn)
    _, study = search.open_study(folder)
    if sampler == "random":
        assert all(t.kind == "random" for t in drawn)
    else:
        # Optuna's sampler chose them: the study records them as its params.
        assert all(set(t.params) == set(space) for t in study.get_trials() if t.number > 0)


def test_an_exported_trial_trains_with_the_settings_the_search_chose(project_file, tmp_path):
    file = _searched(project_file, "export.graph.yaml", structure=False, trial_epochs=1,
                     hyperparameters={"optimizer.lr": {"low": 0.0005, "high": 0.05, "log": True},
                                      "augmentation.rotate": {"low": 0, "high": 15}})
    folder = tmp_path / "s"
    search.create(gc.load(file), folder, base_dir=file.parent)
    trial = search.run(folder, max_trials=2)[-1]
    exported = gc.load(search.export_trial(folder, trial.number, tmp_path / "best.graph.yaml"))
    training = exported.sections["training"]
    assert training["optimizer"]["lr"] == trial.settings["optimizer.lr"]
    assert training["augmentation"]["rotate"] == trial.settings["augmentation.rotate"]
    assert "Training settings the search chose: optimizer.lr=" in exported.header


def test_nothing_to_search_is_refused(project_file, tmp_path):
    file = _searched(project_file, "nothing.graph.yaml", structure=False)
    with pytest.raises(GraphError, match="nothing to search"):
        search.create(gc.load(file), tmp_path / "s", base_dir=file.parent)


def test_the_designer_edits_the_space_as_yaml_lines():
    from designer.widgets import from_widget
    from runtime.settings import SEARCH

    field = next(f for f in SEARCH if f.name == "hyperparameters")
    typed = "optimizer.lr: {low: 0.0001, high: 0.01, log: true}\nbatch_size: {choices: [32, 64]}\n"
    assert from_widget(field, typed) == {"optimizer.lr": {"low": 0.0001, "high": 0.01, "log": True},
                                         "batch_size": {"choices": [32, 64]}}
    assert from_widget(field, "") == {}
    with pytest.raises(ValueError, match="expected a mapping"):
        field.check(from_widget(field, "optimizer.lr: {low: [0.1"))
