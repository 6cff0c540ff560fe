"""Reading YAML and JSON that a hostile committer may have written, with a bound on everything.

- Nesting deeper than `MAX_DEPTH` is refused while the document is composed (before Python's own
  recursion limit turns it into a RecursionError).
- YAML aliases are allowed (k0sctl configs use anchors), but the file is refused when its expansion
  (every alias counted as a copy, summed over all its documents) would exceed `MAX_NODES`: a
  700-byte "billion laughs" would otherwise become a MemoryError the first time anybody prints it,
  and splitting it into several documents (`---`) does not raise the bound.
- Integers longer than Python converts (4300 digits) and strings with lone surrogates (which cannot
  be written to a log or a file as UTF-8) are refused with their own message.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from k0sctl_resource.runtime.errors import ResourceError

if TYPE_CHECKING:  # imported where used: the request parser (every check) needs no YAML
    import yaml

MAX_DEPTH = 100
MAX_NODES = 100_000


@functools.cache
def _loader_class() -> type[yaml.SafeLoader]:
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader that refuses deep nesting while composing (see the module doc)."""

        where = "YAML"
        depth = 0

        def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise ResourceError(f"{self.where}: nested deeper than {MAX_DEPTH} levels; refusing it")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return BoundedLoader


def _expanded_size(root: yaml.Node, where: str, limit: int) -> int:
    """Nodes of the document with every alias expanded (aliases are shared node objects); refused
    above `limit` (what is left of `MAX_NODES` after the file's earlier documents)."""
    import yaml

    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if children_done or not children:
            total = 1 + sum(sizes[id(child)] for child in children)
            if total > limit:
                raise ResourceError(f"{where}: aliases would expand it to more than {MAX_NODES} values "
                                    "(a YAML alias bomb?); refusing it")
            sizes[id(node)] = total
            open_nodes.discard(id(node))
            continue
        if id(node) in open_nodes:
            raise ResourceError(f"{where}: an alias refers to a value that contains it; refusing it")
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def check_values(value: Any, where: str) -> None:
    """Refuse strings that cannot be written as UTF-8 (lone surrogates), anywhere in `value`."""
    stack = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ResourceError(f"{where}: a string holds a lone surrogate (\\ud800-\\udfff), which is not "
                                    "text; refusing it") from None
        elif isinstance(item, dict | list):
            if id(item) in seen:
                continue
            seen.add(id(item))
            stack.extend(item.keys() if isinstance(item, dict) else ())
            stack.extend(item.values() if isinstance(item, dict) else item)


def number_error(exc: ValueError, where: str) -> ResourceError:
    """The message for Python's refusal to convert a too long integer (or another bad value)."""
    if "digits" in str(exc):
        return ResourceError(f"{where}: a number has more digits than Python converts (4300); refusing it")
    return ResourceError(f"{where}: a value cannot be read ({str(exc)[:80]})")


def load_yaml_documents(text: str, where: str) -> list[Any]:
    """Every YAML document of `text` (an empty one as None), in order, bounded as the module doc says
    (the bounds hold for the whole file); `where` names it in errors."""
    import yaml

    loader = None
    try:
        loader = _loader_class()(text)  # the reader refuses control characters right here
        loader.where = where  # type: ignore[attr-defined]
        nodes: list[yaml.Node] = []
        expanded = 0
        while loader.check_node():  # every document, an empty one (`---` alone) as a null node
            node = loader.get_node()
            if node is None:  # not after check_node(); the stubs cannot know
                break
            expanded += _expanded_size(node, where, MAX_NODES - expanded)
            nodes.append(node)
        data = [loader.construct_document(node) for node in nodes]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        if isinstance(exc, yaml.reader.ReaderError):
            at = f" (character {exc.character!r} at position {exc.position}: not allowed in YAML)"
        raise ResourceError(f"{where}: not valid YAML{at}") from None
    except ValueError as exc:
        raise number_error(exc, where) from None
    except RecursionError:
        raise ResourceError(f"{where}: nested too deeply; refusing it") from None
    except ResourceError:
        raise
    except (AttributeError, TypeError, IndexError, KeyError, OverflowError) as exc:
        # PyYAML's constructors fail this way on some explicitly tagged values (`!!timestamp ''`)
        raise ResourceError(f"{where}: a tagged value cannot be read ({exc.__class__.__name__}); "
                            "refusing it") from None
    finally:
        if loader is not None:
            loader.dispose()
    check_values(data, where)
    return data
