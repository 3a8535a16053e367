"""lm-eval tasks for acd: the index, name checks with close matches, and data that cannot be reached.

acd's task index is lm-eval's own tasks, plus the small offline copies shipped in
``acd/data/tasks`` (``lambada_local``, ``wikitext_local``, ``inverse_scaling_*_local``; tag
``acd_local``), plus any ``include_path`` directories. lm-eval resolves a relative
``data_files`` path against the working directory; acd also accepts one relative to the task
YAML itself: the YAML files of each include directory are copied into a temporary directory
with such paths made absolute, so shipped and user tasks work from any directory.
"""

from __future__ import annotations

import difflib
import glob
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from acd.errors import OFFLINE_RUN, UsageError

LOCAL_TASKS = Path(str(resources.files("acd") / "data" / "tasks"))


class _Tagged:
    """A YAML node with a tag such as lm-eval's ``!function``, kept as written."""

    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: _Tagged("!" + suffix, loader.construct_scalar(node)))
_Dumper.add_representer(_Tagged, lambda dumper, tagged: dumper.represent_scalar(tagged.tag, tagged.value))


def _is_task_yaml(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") or path.name.endswith("_yaml")


def _resolve(files: Any, base: Path) -> Any:
    """``data_files`` (str, list or split -> str/list) with paths that exist relative to ``base`` made absolute."""
    if isinstance(files, dict):
        return {split: _resolve(value, base) for split, value in files.items()}
    if isinstance(files, list):
        return [_resolve(value, base) for value in files]
    if isinstance(files, str) and not os.path.isabs(files) and "://" not in files and glob.glob(str(base / files)):
        return str((base / files).resolve())
    return files


def resolved_copy(source: Path, target: Path) -> Path:
    """Copy the task YAMLs and Python helpers of ``source`` to ``target``, data_files made absolute."""
    for path in sorted(source.rglob("*")):
        if not path.is_file() or not (_is_task_yaml(path) or path.suffix == ".py"):
            continue
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
        if not _is_task_yaml(path):
            continue
        config = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        kwargs = config.get("dataset_kwargs") if isinstance(config, dict) else None
        if isinstance(kwargs, dict) and "data_files" in kwargs:
            resolved = _resolve(kwargs["data_files"], path.parent)
            if resolved != kwargs["data_files"]:
                kwargs["data_files"] = resolved
                out.write_text(yaml.dump(config, Dumper=_Dumper, sort_keys=False), encoding="utf-8")
    return target


@contextmanager
def task_manager(
    include_path: Iterable[str | os.PathLike[str]] = (), include_defaults: bool = True, needed: Sequence[str] = ()
) -> Iterator[Any]:
    """An lm-eval ``TaskManager`` over lm-eval's tasks, acd's local tasks and ``include_path``.

    lm-eval's own index takes seconds to build, so it is only built when some ``needed`` task
    is not among the local ones. Load the tasks inside the ``with`` block: the YAML copies live
    only as long as it.
    """
    from lm_eval.tasks import TaskManager

    directories = [LOCAL_TASKS]
    for path in include_path:
        if not Path(path).is_dir():
            raise UsageError(f"include_path={str(path)!r} is not a directory: give a directory of lm-eval task YAMLs")
        directories.append(Path(path))
    with tempfile.TemporaryDirectory(prefix="acd-tasks-") as tmp:
        copies = [str(resolved_copy(path, Path(tmp) / str(index))) for index, path in enumerate(directories)]
        manager = TaskManager(include_path=copies, include_defaults=False)
        if include_defaults and (not needed or not set(needed) <= set(manager.all_tasks)):
            manager = TaskManager(include_path=copies, include_defaults=True)
        yield manager


def check_task_names(manager: Any, names: Sequence[str]) -> None:
    """Raise UsageError for the first unknown task name, listing the close matches."""
    if not names:
        raise UsageError("tasks=[] is not allowed: name at least one lm-eval task, e.g. lambada_openai")
    known = manager.all_tasks
    for name in names:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
        hint = f"close matches are {', '.join(close)}" if close else "list them with `lm-eval ls tasks`"
        raise UsageError(f"task={name!r} is not a known lm-eval task: {hint}")


def _dataset_of(manager: Any, name: str) -> str:
    entry = manager.task_index.get(name)
    config = (entry.cfg if entry is not None else None) or {}
    if "dataset_path" not in config:
        return "its dataset"
    dataset = repr(config["dataset_path"])
    return f"dataset {dataset}" + (f" ({config['dataset_name']})" if config.get("dataset_name") else "")


def unreachable_message(manager: Any, name: str, error: BaseException) -> str:
    """One line: which task and dataset failed, why, and how to point the task at local files."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"task={name!r}: {_dataset_of(manager, name)} cannot be loaded ({reason}); offline, copy the task's "
        "YAML into a directory with `dataset_path: json` and `dataset_kwargs: {data_files: {<split>: FILE.jsonl}}` "
        "and pass that directory as include_path (benchmarks.include_path, or --include-path), or name acd's "
        f"local copies in benchmarks.tasks (lambada_local, wikitext_local, ...: the YAMLs in {LOCAL_TASKS}), "
        f"{OFFLINE_RUN}"
    )


def load_tasks(manager: Any, names: Sequence[str]) -> list[Any]:
    """The lm-eval Task/Group objects for ``names``, loaded once so every exit can reuse them."""
    from datasets.exceptions import DatasetGenerationError

    check_task_names(manager, names)
    loaded: list[Any] = []
    for name in names:
        try:
            result = manager.load([name])
        except (OSError, DatasetGenerationError) as error:
            raise UsageError(unreachable_message(manager, name, error)) from None
        group = result["groups"].get(name)
        loaded.extend([group] if group is not None else result["tasks"].values())
    return loaded
