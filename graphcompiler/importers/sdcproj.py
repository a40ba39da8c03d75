"""Read Neural Network Console's ``.sdcproj`` project files (an INI format) into plain data.

A project holds networks (``[Global]`` lists them; a one-network project has only ``[Network_Global]``),
each a set of ``<Network>_Layer_N`` sections (type, canvas rectangle, named properties) and
``<Network>_Link_N`` sections (source layer and pin to destination layer and pin); then datasets,
``[Config]``, optimizers, monitors, executors and ``[StructureSearch]``. Property values that start
with ``*`` refer to something else and are resolved as NNC resolves them (``*Name``, ``*KernelShape``,
``*ConvolutionPaddingSize``, ...). Nothing here knows our layers: ``nnc_import`` maps them.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GraphError


@dataclass
class NncLayer:
    """One layer of an NNC network: its id, type, name, properties (resolved) and canvas position."""

    id: int
    type: str
    name: str
    properties: dict[str, str]
    pos: tuple[float, float]
    section: str


@dataclass
class NncLink:
    """A link from a layer's output pin to another layer's input pin."""

    src: int
    src_pin: int
    dst: int
    dst_pin: int


@dataclass
class NncLoop:
    """What a recurrent loop's body needs to run as a loop block; layers are named by NNC id."""

    axis: int
    sequences: list[int]
    """The body's Inputs that RecurrentInputs became, given one step at a time."""
    states: dict[int, tuple[int, float]]
    """The body's Inputs that Delays became -> (the layer giving the next value, the initial value)."""
    output: int
    """The layer whose value RecurrentOutput collects."""


@dataclass
class NncNetwork:
    """One network of a project: layers by id and their links."""

    name: str
    layers: dict[int, NncLayer] = field(default_factory=dict)
    links: list[NncLink] = field(default_factory=list)
    loop: NncLoop | None = None
    """Set on a recurrent loop's body that the importer took out of its network."""


@dataclass
class NncProject:
    """Everything an .sdcproj holds that an import needs."""

    path: Path
    networks: dict[str, NncNetwork]
    datasets: list[dict[str, str]]
    config: dict[str, str]
    optimizers: list[dict[str, str]]
    monitors: list[dict[str, str]]
    executors: list[dict[str, str]]
    structure_search: dict[str, str]


def read_sdcproj(path: str | os.PathLike) -> NncProject:
    """Parse an .sdcproj file; a truncated or corrupted one raises one GraphError naming the file and place."""
    path = Path(path)
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",), comment_prefixes=(";",),
                                       empty_lines_in_values=False)
    parser.optionxform = str  # NNC's keys are case-sensitive (SourceLayerID, BatchSize)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise GraphError("no such file", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphError(f"cannot read it as an NNC project (.sdcproj is UTF-8 text): {exc}", file=str(path)) from None
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None) or _first_line(exc)
        raise GraphError(f"not an NNC project file: {_first_sentence(exc)}", file=str(path), line=line) from None
    engine = parser.get("Engine", "SDeepEngineType", fallback="NNabla")
    if engine != "NNabla":
        raise GraphError(f"[Engine]: SDeepEngineType = {engine}: this project is for Neural Network Console's "
                         f"{engine} engine, which runs a preset model rather than a network graph; netcanvas imports "
                         "NNabla-engine projects (network graphs) only", file=str(path))
    reader = _Reader(parser, path)
    # A unit's own file (the network behind a Unit layer) has networks and nothing else.
    counted = parser.has_section("Config")
    return NncProject(path, reader.networks(), reader.numbered("Dataset"),
                      reader.section("Config") if counted else {},
                      *(reader.numbered(stem, "Config", f"Num{stem}") if counted else reader.numbered(stem)
                        for stem in ("Optimizer", "Monitor", "Executor")),
                      dict(parser["StructureSearch"]) if parser.has_section("StructureSearch") else {})


def _first_line(exc: configparser.Error) -> int | None:
    errors = getattr(exc, "errors", None)
    return errors[0][0] if errors else None


def _first_sentence(exc: configparser.Error) -> str:
    return str(exc).splitlines()[0].removeprefix("Source contains parsing errors: ")


class _Reader:
    def __init__(self, parser: configparser.ConfigParser, path: Path):
        self.parser, self.path = parser, path
        self.sections: dict[str, dict[str, str]] = {}
        """Sections read so far: a layer's dozens of values are looked up in one copy of it."""

    def fail(self, section: str, problem: str) -> GraphError:
        return GraphError(f"[{section}]: {problem}; the file looks truncated or edited by hand, save it again "
                          "from Neural Network Console", file=str(self.path), line=self._line_of(section))

    def _line_of(self, section: str) -> int | None:
        header = f"[{section}]"
        for number, line in enumerate(self.path.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if line.strip() == header:
                return number
        return None

    def section(self, name: str) -> dict[str, str]:
        if name not in self.sections:
            if not self.parser.has_section(name):
                raise self.fail(name, "this section is missing")
            self.sections[name] = dict(self.parser[name])
        return self.sections[name]

    def value(self, section: str, key: str) -> str:
        values = self.section(section)
        if key not in values:
            raise self.fail(section, f"'{key}' is missing")
        return values[key]

    def count(self, section: str, key: str) -> int:
        text = self.value(section, key)
        try:
            return int(text)
        except ValueError:
            raise self.fail(section, f"'{key}' should be a whole number, not '{text}'") from None

    def number(self, section: str, key: str, default: float) -> float:
        text = self.section(section).get(key)
        try:
            return default if text is None else float(text)
        except ValueError:
            raise self.fail(section, f"'{key}' should be a number, not '{text}'") from None

    def numbered(self, stem: str, count_section: str | None = None, count_key: str | None = None) -> list[dict]:
        """Sections ``<stem>_0``, ``<stem>_1``, ... (as many as the count says, else as many as there are)."""
        if count_section:
            return [self.section(f"{stem}_{i}") for i in range(self.count(count_section, count_key))]
        found, i = [], 0
        while self.parser.has_section(f"{stem}_{i}"):
            found.append(dict(self.parser[f"{stem}_{i}"]))
            i += 1
        return found

    def networks(self) -> dict[str, NncNetwork]:
        if self.parser.has_section("Global"):
            names = [self.value("Global", f"Network_{i}") for i in range(self.count("Global", "NumNetwork"))]
            if not names:
                raise self.fail("Global", "NumNetwork = 0: the project has no network")
            return {name: self.network(name, f"{name}_") for name in names}
        return {"Main": self.network("Main", "")}

    def network(self, name: str, prefix: str) -> NncNetwork:
        network = NncNetwork(name)
        glob = f"{prefix}Network_Global"
        for i in range(self.count(glob, "NumLayer")):
            layer = self.layer(f"{prefix}Layer_{i}")
            network.layers[layer.id] = layer
        for i in range(self.count(glob, "NumLink")):
            section = f"{prefix}Link_{i}"
            link = NncLink(*(self.count(section, k) for k in ("SourceLayerID", "SourcePinIndex", "DestLayerID",
                                                                "DestPinIndex")))
            for end in (link.src, link.dst):
                if end not in network.layers:
                    raise self.fail(section, f"it links layer {end}, which the network '{name}' does not have")
            network.links.append(link)
        return network

    def layer(self, section: str) -> NncLayer:
        properties = {}
        for i in range(self.count(section, "NumProperty")):
            properties[self.value(section, f"Property_{i}_Name")] = self.value(section, f"Property_{i}_Value")
        pos = tuple(self.number(section, f"Position_{k}", 0.0) for k in (0, 1))
        layer = NncLayer(self.count(section, "ID"), self.value(section, "Type"), properties.get("Name", ""),
                         properties, pos, section)
        layer.properties = {key: _resolve(value, layer.properties) for key, value in properties.items()}
        return layer


def _resolve(value: str, properties: dict[str, str]) -> str:
    """A ``*Name``-style reference to another property of the same layer, as NNC fills it in.

    ``*ConvolutionPaddingSize`` is the padding that keeps the size with BorderMode ``same``
    (dilation x (kernel - 1) / 2 per axis) and nothing otherwise. References to unit arguments
    (``*UnitProperty(...)``), in-place flags and graph-level values stay as they are for the mapper.
    """
    if not value.startswith("*"):
        return value
    key = value[1:]
    if key == "ConvolutionPaddingSize":
        if properties.get("BorderMode", "valid") != "same":
            return properties.get("Padding", "0,0") if not properties.get("Padding", "").startswith("*") else \
                ",".join("0" for _ in properties.get("KernelShape", "1,1").split(","))
        kernel = [int(k) for k in properties.get("KernelShape", "1,1").split(",")]
        dilation = [int(d) for d in properties.get("Dilation", ",".join("1" for _ in kernel)).split(",")]
        return ",".join(str(d * (k - 1) // 2) for k, d in zip(kernel, dilation))
    if key in properties and not properties[key].startswith("*"):
        return properties[key]
    return value
