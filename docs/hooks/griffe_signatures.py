"""Griffe extension: a class whose signature is computed at run time shows it in the reference.

The event and delta layers declare their constructor parameters as data
(``neurosparse/layers/_base.py``: a geometry's, then a kind's) and expose the joined list
as the class's ``__signature__``; their ``__init__`` itself reads ``(*args, **kwargs)``.
Griffe reads the source, not the running class, so without this the reference would
show ``EventLinear(*args, **kwargs)``. For every class that defines or inherits a
``__signature__``, the documented ``__init__`` gets the parameters of
``inspect.signature(cls)``.
"""

from __future__ import annotations

import inspect

import griffe

_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: griffe.ParameterKind.positional_only,
    inspect.Parameter.POSITIONAL_OR_KEYWORD: griffe.ParameterKind.positional_or_keyword,
    inspect.Parameter.VAR_POSITIONAL: griffe.ParameterKind.var_positional,
    inspect.Parameter.KEYWORD_ONLY: griffe.ParameterKind.keyword_only,
    inspect.Parameter.VAR_KEYWORD: griffe.ParameterKind.var_keyword,
}


def _declared_signature(path: str) -> inspect.Signature | None:
    """``inspect.signature`` of the class at ``path`` if a class in its MRO sets one."""
    try:
        runtime = griffe.dynamic_import(path)
    except ImportError:
        return None
    if not inspect.isclass(runtime):
        return None
    if not any("__signature__" in vars(base) for base in runtime.__mro__[:-1]):
        return None
    return inspect.signature(runtime)


def _annotation(p: inspect.Parameter) -> str | None:
    if p.annotation is inspect.Parameter.empty:
        return None
    return p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)


class RuntimeSignatures(griffe.Extension):
    def on_class(self, *, cls: griffe.Class, **kwargs) -> None:
        sig = _declared_signature(cls.path)
        if sig is None:
            return
        params = [griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)]
        params += [
            griffe.Parameter(
                p.name,
                annotation=_annotation(p),
                kind=_KINDS[p.kind],
                default=None if p.default is inspect.Parameter.empty else repr(p.default),
            )
            for p in sig.parameters.values()
        ]
        init = griffe.Function("__init__", parameters=griffe.Parameters(*params),
                               lineno=cls.lineno, endlineno=cls.lineno)
        cls.set_member("__init__", init)
