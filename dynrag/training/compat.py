"""Compatibility with what older versions of dynrag-train wrote: run directories and configs.

A run directory records, per stage, the hash of the settings it ran with (`RunDir.settings_hash`)
and its inputs; a stage is skipped when both match. The shipped model's rebuild and run
directories in the wild depend on those records, so every rule that lets an older record still
match lives here, in one place:

- `hashed_section`: a config section as hashed. The options a settings class added later
  (``HASH_OMITS_DEFAULTS``) are left out at the default they were added with, and a TRL
  section's ``trainer`` is hashed under its first name, ``extra``;
- `kept_option_prefixes`: how versions that recorded the first k of those options hashed them;
- `SHARED_ADDED_LATER`: shared fields hashed only when set (absent before they existed);
- `older_input_records`: inputs recorded under another name (``LEGACY_INPUT_KEYS``);
- `sampling_model`: the model the ``sample`` stage recorded (``"policy"`` in older runs);
- `trainer_under_old_name`: a config's ``extra:`` key, the deprecated name of ``trainer:``.

Imports nothing of dynrag.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "LEGACY_INPUT_KEYS",
    "SHARED_ADDED_LATER",
    "added_options",
    "hashed_section",
    "kept_option_prefixes",
    "older_input_records",
    "omit_defaults",
    "sampling_model",
    "trainer_under_old_name",
]

SHARED_ADDED_LATER = ("presort",)
"""Shared config fields hashed only when set: run directories made before they existed hold."""

LEGACY_INPUT_KEYS: dict[str, dict[str, str]] = {"sample": {"start": "policy"}}
"""Per stage, inputs that older versions recorded under another name (new name -> old name)."""


def added_options(cls: Any) -> dict[str, Any]:
    """A settings class's ``HASH_OMITS_DEFAULTS``: its later options and their first defaults.

    In the order the options appeared; ``a.b`` names option ``b`` of the nested section ``a``.
    A class without it (or None) has none.
    """
    return dict(getattr(cls, "HASH_OMITS_DEFAULTS", {}))


def omit_defaults(section: dict[str, Any], added: Mapping[str, Any]) -> dict[str, Any]:
    """``section`` without the ``added`` keys at their value; ``a.b`` names a nested key.

    The caller's dictionaries are left as they were.
    """
    out = dict(section)
    for dotted, default in added.items():
        *parents, key = dotted.split(".")
        holder = out
        for name in parents:
            inner = holder.get(name)
            if not isinstance(inner, dict):
                break
            copied = dict(inner)  # the caller's section is left as it was
            holder[name] = copied
            holder = copied
        else:
            if key in holder and holder[key] == default:
                del holder[key]
    return out


def hashed_section(
    section: dict[str, Any], cls: Any = None, keep: Iterable[str] = ()
) -> dict[str, Any]:
    """A config section as hashed, so that older run directories still match.

    A TRL section's ``trainer`` is hashed under its first name, ``extra``; the fields its
    settings class ``cls`` added later (``HASH_OMITS_DEFAULTS``) are left out while they hold
    the default they were added with, except those named in ``keep`` (how a version that
    already had them recorded them). So run directories made before a rename or a new option
    still find their stages complete.
    """
    kept = set(keep)
    added = {k: v for k, v in added_options(cls).items() if k not in kept}
    section = omit_defaults(section, added)
    if "trainer" in section and "extra" not in section:
        return {("extra" if k == "trainer" else k): v for k, v in section.items()}
    return section


def kept_option_prefixes(sections: Mapping[str, Any]) -> list[list[list[str]]]:
    """Per section, the ``section:option`` lists an older version hashed at their defaults.

    ``sections``: ``{section name: its settings class (or None)}``. Options are added to
    ``HASH_OMITS_DEFAULTS`` in the order they appeared: a version that had the first k of them,
    before they were listed there, recorded those k even at their defaults and had none of the
    later ones; a version that lists them leaves every one out at its default. So each section
    is tried with its first k options kept, k = 0..n (one list per k).
    """
    out = []
    for name, cls in sections.items():
        options = list(added_options(cls))
        out.append([[f"{name}:{k}" for k in options[:i]] for i in range(len(options) + 1)])
    return out


def older_input_records(stage: str, inputs: dict[str, str]) -> list[dict[str, str]]:
    """``inputs`` as older versions recorded them for ``stage`` (none when the same)."""
    renamed = LEGACY_INPUT_KEYS.get(stage, {})
    legacy = {renamed.get(k, k): v for k, v in inputs.items()}
    return [legacy] if legacy != inputs else []


def sampling_model(sample_outputs: Mapping[str, Any]) -> str | None:
    """The model the ``sample`` stage recorded in its outputs (``"policy"`` in older runs)."""
    model = sample_outputs.get("model") or sample_outputs.get("policy")
    return str(model) if model else None


def trainer_under_old_name(data: Any) -> Any:
    """A TRL section's raw data with its deprecated ``extra`` key renamed ``trainer`` (warned).

    Raises:
        ValueError: both keys are set.
    """
    if isinstance(data, dict) and "extra" in data:
        if "trainer" in data:
            msg = "set trainer only (extra is its deprecated name)"
            raise ValueError(msg)
        warnings.warn(
            "the 'extra' key of a stage section is deprecated: name it 'trainer'",
            FutureWarning,
            stacklevel=3,
        )
        data = {("trainer" if k == "extra" else k): v for k, v in data.items()}
    return data
