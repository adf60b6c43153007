"""``Gitlab::Ci::YamlProcessor``: entries first (every message), then the logical checks
GitLab runs once the entries are valid (stages, dependencies, needs; the first problem),
then one ``JobConfig`` per visible job, in the ``Build`` shape ``job_payload`` reads."""

from __future__ import annotations

from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any

import yaml

from app.lib.ci_config import entries
from app.lib.ci_config.entries import Need, Node
from app.lib.ci_config.errors import ConfigError
from app.lib.ci_config.loader import load

DEFAULT_STAGES = ["build", "test", "deploy"]
EDGE_STAGES = (".pre", ".post")
DEFAULT_JOB_STAGE = "test"
NO_VISIBLE_JOB = "jobs config should contain at least one visible job"
SCRIPT_KEYWORD = "config should implement the script:, run:, or trigger: keyword"


@dataclass(frozen=True)
class JobConfig:
    """One job as the pipeline creates it. ``needs`` None: it waits for earlier stages;
    a tuple (even empty): it waits only for those jobs (``scheduling_type: dag``)."""

    name: str
    stage: str
    stage_idx: int
    when: str
    allow_failure: bool
    options: dict[str, Any]
    needs: tuple[Need, ...] | None = None


@dataclass(frozen=True)
class CiConfig:
    stages: list[str]
    jobs: list[JobConfig]

    def summary(self) -> dict[str, Any]:
        return {
            "stages": self.stages,
            "jobs": [
                {
                    "name": job.name,
                    "stage": job.stage,
                    "stage_idx": job.stage_idx,
                    "when": job.when,
                    "allow_failure": job.allow_failure,
                    "needs": None if job.needs is None else [n.name for n in job.needs],
                }
                for job in self.jobs
            ],
        }


def wrap_stages(stages: list[str]) -> list[str]:
    """``EdgeStagesInjector``: ``.pre`` first and ``.post`` last, whatever the file says."""
    return [EDGE_STAGES[0], *(s for s in stages if s not in EDGE_STAGES), EDGE_STAGES[1]]


def process(content: str | dict[Any, Any]) -> CiConfig:
    """Parse and validate a ``.gitlab-ci.yml`` (text, or a mapping already loaded)."""
    data = load(content) if isinstance(content, str) else load(yaml.safe_dump(content, sort_keys=False))
    root = _Root(data)
    if root.node.errors:
        raise ConfigError(root.node.errors)
    return root.logical()


class _Root:
    def __init__(self, data: dict[Any, Any]) -> None:
        self.node = Node("")
        self.data = {entries.ruby_string(k): v for k, v in data.items()}
        self.defaults: dict[str, Any] = {}
        self.variables: dict[str, str] = {}
        self.stages = wrap_stages(DEFAULT_STAGES)
        self.jobs: list[dict[str, Any]] = []
        self._compose()

    def _compose(self) -> None:
        root_node = Node("root", self.node.errors)
        keys = [k for k in self.data if k in entries.UNSUPPORTED_ROOT]
        if keys:
            root_node.error("config", f"uses keywords mockcoord does not support: {', '.join(keys)}")
        self._default()
        if "variables" in self.data:
            found = entries.variables(self.node.child("variables"), self.data["variables"], entries.ROOT_VARIABLE_DATA)
            self.variables = found or {}
        if "stages" in self.data:
            stages = self.data["stages"]
            if entries.array_of_strings(stages):
                self.stages = wrap_stages(stages)
            else:
                self.node.child("stages").error("config", "should be an array of strings")
        self._jobs()

    def _default(self) -> None:
        default = self.data.get("default")
        legacy = {k: self.data[k] for k in entries.LEGACY_DEFAULTS if k in self.data}
        if default is not None:
            node = self.node.child("default")
            if not isinstance(default, dict):
                node.error("config", "should be a hash")
                return
            for key in legacy:
                if key in default:
                    raise ConfigError([f"{key} is defined in top-level and `default:` entry"])
            node.keys(default, entries.DEFAULT_KEYWORDS, entries.SUPPORTED_DEFAULT_KEYWORDS)
            if node.valid:
                self.defaults = self._inheritable(node, default)
        self.defaults.update(self._inheritable(self.node, legacy))

    def _inheritable(self, node: Node, config: dict[Any, Any]) -> dict[str, Any]:
        """The keywords a job inherits (``inherit: true`` entries), validated where they sit."""
        values: dict[str, Any] = {}
        for key in ("before_script", "after_script"):
            if key in config:
                values[key] = entries.commands(node.child(key), config[key])
        checks = {
            "image": entries.image,
            "services": entries.services,
            "timeout": entries.timeout,
            "tags": entries.tags,
            "artifacts": entries.artifacts,
        }
        for key, check in checks.items():
            if key in config:
                values[key] = check(node.child(key), config[key])
        return values

    def _jobs(self) -> None:
        """``Entry::Jobs``: its own checks first; the jobs are only looked at when they pass."""
        jobs_node = self.node.child("jobs")
        configs = {k: v for k, v in self.data.items() if k not in entries.ROOT_KEYWORDS}
        visible = {}
        for name, config in configs.items():
            if name.startswith("."):
                continue
            if isinstance(config, dict) and {"script", "run", "trigger"} & set(map(entries.ruby_string, config)):
                visible[name] = {entries.ruby_string(k): v for k, v in config.items()}
            else:
                jobs_node.error(name, SCRIPT_KEYWORD)
        if not visible:
            self.node.errors.append(NO_VISIBLE_JOB)
            jobs_node.valid = False
        if not jobs_node.valid:
            return
        for name, config in configs.items():
            if name.startswith(".") and entries.blank(config):
                jobs_node.child(name).error("config", "can't be blank")
        for name, config in visible.items():
            job = self._job(jobs_node.child(name), name, config)
            if job is not None:
                self.jobs.append(job)

    def _job(self, node: Node, name: str, config: dict[str, Any]) -> dict[str, Any] | None:
        if len(name) > entries.MAX_JOB_NAME:
            node.error("name", f"is too long (maximum is {entries.MAX_JOB_NAME} characters)")
        node.keys(config, entries.JOB_KEYWORDS | {"trigger"}, entries.SUPPORTED_JOB_KEYWORDS)
        if "script" in config and entries.blank(config["script"]):
            node.error("script", "can't be blank")
        when = config.get("when")
        if when is not None:
            if not isinstance(when, str):
                node.error("when", "should be a string")
            if when not in entries.ALLOWED_WHEN:
                node.error("when", f"should be one of: {', '.join(entries.ALLOWED_WHEN)}")
            elif when == "delayed":
                node.error("when", "delayed is not supported by mockcoord")
        if config.get("dependencies") is not None and not entries.array_of_strings(config["dependencies"]):
            node.error("dependencies", "should be an array of strings")
        failure = config.get("allow_failure")
        if failure is not None and not isinstance(failure, bool | dict):
            node.error("allow_failure", "should be a hash or a boolean value")
        if not node.valid:
            return None

        job: dict[str, Any] = {"name": name, "when": when or "on_success"}
        for key in ("before_script", "script", "after_script"):
            if key in config:
                job[key] = entries.commands(node.child(key), config[key])
        job.update(
            self._inheritable(node, {k: v for k, v in config.items() if k not in ("before_script", "after_script")})
        )
        if "needs" in config:
            job["needs"] = entries.needs(node.child("needs"), config["needs"])
        if failure is not None:
            job["allow_failure"] = entries.allow_failure(node.child("allow_failure"), failure)
        stage = config.get("stage", DEFAULT_JOB_STAGE)
        if not isinstance(stage, str):
            node.child("stage").error("config", "should be a string")
        job["stage"] = stage
        if "variables" in config:
            job["variables"] = entries.variables(
                node.child("variables"), config["variables"], entries.JOB_VARIABLE_DATA
            )
        if "dependencies" in config:
            job["dependencies"] = list(config["dependencies"])
        if not node.valid:
            return None
        if job.get("dependencies") and job.get("needs") is not None:
            missing = [d for d in job["dependencies"] if d not in {n.name for n in job["needs"]}]
            if missing:
                node.error("dependencies", f"the {', '.join(missing)} should be part of needs")
                return None
        return job

    def logical(self) -> CiConfig:
        """``run_logical_validations!``: the first problem only, in GitLab's words."""
        by_name = {job["name"]: job for job in self.jobs}
        stage_index = {name: self._stage_index(job["stage"]) for name, job in by_name.items()}
        for name, job in by_name.items():
            if stage_index[name] is None:
                available = ", ".join(self.stages)
                raise ConfigError(
                    [f"{name} job: chosen stage {job['stage']} does not exist; available stages are {available}"]
                )
            for dependency in job.get("dependencies") or []:
                self._check_dependency(name, dependency, "dependency", stage_index)
            needs = job.get("needs") or []
            for need in needs:
                if need.name in by_name or not need.optional:
                    self._check_dependency(name, need.name, "need", stage_index)
            names = [n.name for n in needs]
            duplicated = list(dict.fromkeys(n for n in names if names.count(n) > 1))
            if duplicated:
                raise ConfigError([f"{name} has the following needs duplicated: {', '.join(duplicated)}."])
        graph = {name: [n.name for n in job.get("needs") or [] if n.name in by_name] for name, job in by_name.items()}
        try:
            tuple(TopologicalSorter(graph).static_order())
        except CycleError:
            raise ConfigError(["The pipeline has circular dependencies"]) from None
        return CiConfig(self.stages, [self._job_config(job, stage_index[job["name"]], by_name) for job in self.jobs])

    def _stage_index(self, stage: str) -> int | None:
        return self.stages.index(stage) if stage in self.stages else None

    @staticmethod
    def _check_dependency(name: str, dependency: str, kind: str, stage_index: dict[str, int | None]) -> None:
        if dependency not in stage_index:
            raise ConfigError([f"{name} job: undefined {kind}: {dependency}"])
        dependency_index = stage_index[dependency]
        if dependency_index is None or dependency_index > (stage_index[name] or 0):
            raise ConfigError([f"{name} job: {kind} {dependency} is not defined in current or prior stages"])

    def _job_config(self, job: dict[str, Any], stage_idx: int | None, by_name: dict[str, Any]) -> JobConfig:
        assert stage_idx is not None
        options: dict[str, Any] = {}
        for key in ("before_script", "script", "after_script"):
            value = job.get(key, self.defaults.get(key)) if key != "script" else job["script"]
            if value:
                options[key] = value
        for key in ("image", "services", "tags", "artifacts"):
            value = job.get(key, self.defaults.get(key))
            if value is not None:
                options[key] = value
        merged = {**self.variables, **(job.get("variables") or {})}
        if merged:
            options["variables"] = merged
        if "dependencies" in job:
            options["dependencies"] = job["dependencies"]
        job_timeout = job.get("timeout", self.defaults.get("timeout"))
        if job_timeout is not None:
            options["job_timeout"] = job_timeout
        failure = job.get("allow_failure")
        if isinstance(failure, dict):
            options["allow_failure_criteria"] = failure
        needs = job.get("needs")
        return JobConfig(
            name=job["name"],
            stage=job["stage"],
            stage_idx=stage_idx,
            when=job["when"],
            allow_failure=failure if isinstance(failure, bool) else (failure is None and job["when"] == "manual"),
            options=options,
            needs=None if needs is None else tuple(n for n in needs if n.name in by_name),
        )
