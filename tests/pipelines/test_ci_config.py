"""The .gitlab-ci.yml linter: GitLab's messages for each mistake, and the Build shape of a
valid config."""

from __future__ import annotations

import pytest

from app.lib.ci_config import ConfigError, FormatError, Need, process

ERRORS = [
    # YAML itself
    ("", "Please provide content of .gitlab-ci.yml"),
    ("- a\n- b\n", "Invalid configuration format"),
    ("a: [x", "(<unknown>): did not find expected ',' or ']' while parsing a flow sequence at line 1 column 4"),
    # jobs
    ("rubocop:\n  scriptt: [x]\n", "jobs rubocop config should implement the script:, run:, or trigger: keyword"),
    ("my job: {stage: test}\n", "jobs my_job config should implement the script:, run:, or trigger: keyword"),
    (".hidden: {script: x}\n", "jobs config should contain at least one visible job"),
    ("build: {script: make, foo: 1, bar: 2}\n", "jobs:build config contains unknown keys: foo, bar"),
    ("build: {script: make, rules: [{if: $X}]}\n", "jobs:build config uses keywords mockcoord does not support: rules"),
    ("build: {script: []}\n", "jobs:build script can't be blank"),
    (
        "build: {script: 12}\n",
        "jobs:build:script config should be a string or a nested array of strings up to 10 levels deep",
    ),
    (
        "build: {script: x, when: later}\n",
        "jobs:build when should be one of: on_success, on_failure, always, manual, delayed",
    ),
    ("build: {script: x, when: delayed}\n", "jobs:build when delayed is not supported by mockcoord"),
    ("build: {script: x, allow_failure: maybe}\n", "jobs:build allow failure should be a hash or a boolean value"),
    (
        "build: {script: x, allow_failure: {exit_codes: x}}\n",
        "jobs:build:allow_failure exit codes should be an array of integers or an integer",
    ),
    ("build: {script: x, dependencies: deploy}\n", "jobs:build dependencies should be an array of strings"),
    ("build: {script: x, tags: docker}\n", "jobs:build:tags config should be an array of strings"),
    ("build: {script: x, stage: [a]}\n", "jobs:build:stage config should be a string"),
    ("build: {script: x, image: 3}\n", "jobs:build:image config should be a hash or a string"),
    ("build: {script: x, image: {entrypoint: [sh]}}\n", "jobs:build:image name should be a string"),
    ("build: {script: x, services: postgres}\n", "jobs:build:services config should be an array"),
    ("build: {script: x, timeout: soon}\n", "jobs:build:timeout config should be a duration"),
    ("build: {script: x, timeout: 2 months}\n", "jobs:build:timeout config should not exceed the limit"),
    ("build: {script: x, variables: [A]}\n", "jobs:build:variables config should be a hash"),
    (
        "build: {script: x, variables: {V: {value: 1, description: d}}}\n",
        "jobs:build:variables:v config uses invalid data keys: description",
    ),
    # artifacts
    ("build: {script: x, artifacts: [out]}\n", "jobs:build:artifacts config should be a hash"),
    (
        "build: {script: x, artifacts: {paths: [a], keep: true}}\n",
        "jobs:build:artifacts config contains unknown keys: keep",
    ),
    (
        "build: {script: x, artifacts: {expose_as: a}}\n",
        "jobs:build:artifacts config uses keywords mockcoord does not support: expose_as",
    ),
    ("build: {script: x, artifacts: {paths: out/}}\n", "jobs:build:artifacts paths should be an array of strings"),
    (
        "build: {script: x, artifacts: {untracked: yes please}}\n",
        "jobs:build:artifacts untracked should be a boolean value",
    ),
    (
        "build: {script: x, artifacts: {when: sometimes}}\n",
        "jobs:build:artifacts when should be one of: on_success, on_failure, always",
    ),
    ("build: {script: x, artifacts: {expire_in: forever}}\n", "jobs:build:artifacts expire in should be a duration"),
    (
        "build: {script: x, artifacts: {reports: {junit: 1}}}\n",
        "jobs:build:artifacts:reports junit should be an array of strings or a string",
    ),
    (
        "build: {script: x, artifacts: {reports: {bogus: a}}}\n",
        "jobs:build:artifacts:reports config contains unknown keys: bogus",
    ),
    # needs
    ("test: {script: x, needs: build}\n", "jobs:test:needs config can only be a hash or an array"),
    ("test: {script: x, needs: [{project: a/b, job: build}]}\n", "jobs:test:needs:need has an unsupported type"),
    (
        "test: {script: x, needs: [{job: build, artifacts: no thanks}]}\n",
        "jobs:test:needs:need artifacts should be a boolean value",
    ),
    (
        "build: {stage: build, script: x}\ntest: {script: y, dependencies: [build], needs: []}\n",
        "jobs:test dependencies the build should be part of needs",
    ),
    # the root and defaults
    ("include: ci/a.yml\nbuild: {script: x}\n", "root config uses keywords mockcoord does not support: include"),
    ("stages: build\nbuild: {script: x}\n", "stages config should be an array of strings"),
    ("variables: [A]\nbuild: {script: x}\n", "variables config should be a hash"),
    ("default: {cache: {}}\nbuild: {script: x}\n", "default config uses keywords mockcoord does not support: cache"),
    ("default: {retries: 1}\nbuild: {script: x}\n", "default config contains unknown keys: retries"),
    ("image: ruby\ndefault: {image: ruby}\nbuild: {script: x}\n", "image is defined in top-level and `default:` entry"),
    # logical checks, after the entries
    (
        "build: {script: x, stage: package}\n",
        "build job: chosen stage package does not exist; available stages are .pre, build, test, deploy, .post",
    ),
    (
        "stages: [one]\nbuild: {script: x}\n",
        "build job: chosen stage test does not exist; available stages are .pre, one, .post",
    ),
    ("test: {script: x, dependencies: [build]}\n", "test job: undefined dependency: build"),
    (
        "test: {script: x, dependencies: [deploy]}\ndeploy: {script: y, stage: deploy}\n",
        "test job: dependency deploy is not defined in current or prior stages",
    ),
    ("test: {script: x, needs: [build]}\n", "test job: undefined need: build"),
    (
        "test: {script: x, needs: [deploy]}\ndeploy: {script: y, stage: deploy}\n",
        "test job: need deploy is not defined in current or prior stages",
    ),
    ("a: {script: x, needs: [b, b]}\nb: {script: y}\n", "a has the following needs duplicated: b."),
    ("a: {script: x, needs: [b]}\nb: {script: y, needs: [a]}\n", "The pipeline has circular dependencies"),
]


@pytest.mark.parametrize(("content", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_error_message(content: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        process(content)
    assert raised.value.errors[0] == message


BOMB = """
a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
build: {script: *h}
"""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (BOMB, "The parsed YAML is too big"),
        ("--- &1\n- hi\n- *1\n", "The parsed YAML is too big"),
        ("a: " + "[" * 101 + "]" * 101, "The parsed YAML is too big"),
        ("key: '" + "a" * (2 * 1024 * 1024) + "'", "The provided YAML is too big"),
    ],
    ids=["alias bomb", "contains itself", "too deep", "too long"],
)
def test_size_limits(content: str, message: str) -> None:
    with pytest.raises(FormatError) as raised:
        process(content)
    assert raised.value.errors == [message]


def test_format_errors_are_their_own_kind() -> None:
    with pytest.raises(FormatError):
        process("- a")
    with pytest.raises(ConfigError) as raised:
        process("build: {script: x, foo: 1}")
    assert not isinstance(raised.value, FormatError)


def test_every_entry_message_is_reported() -> None:
    with pytest.raises(ConfigError) as raised:
        process("rubocop: {scriptt: x}\nlint: {script: x, foo: 1}\n")
    assert raised.value.errors == [
        "jobs rubocop config should implement the script:, run:, or trigger: keyword",
    ]
    with pytest.raises(ConfigError) as raised:
        process("variables: [A]\nbuild: {script: x, foo: 1}\ntest: {script: []}\n")
    assert raised.value.errors == [
        "variables config should be a hash",
        "jobs:build config contains unknown keys: foo",
        "jobs:test script can't be blank",
    ]


FULL = """
stages: [build, test, deploy]
variables: {GLOBAL: 1, FLAG: true}
default:
  before_script: [echo default]
  tags: [docker]
  image: {name: "ruby:3.3", pull_policy: if-not-present}
  timeout: 30m
build:
  stage: build
  script: make
  services: [postgres]
  artifacts:
    name: out
    paths: [out/]
    exclude: [out/*.tmp]
    expire_in: 1 week
    when: always
    reports: {junit: report.xml, dotenv: [build.env]}
test:
  script: [[make, test], echo done]
  before_script: []
  after_script: cleanup
  variables: {GLOBAL: job, EXTRA: {value: x, expand: false}}
  needs: [build, {job: lint, artifacts: false}, {job: gone, optional: true}]
  dependencies: [build]
lint:
  stage: build
  script: lint
  image: alpine
  tags: []
  allow_failure: {exit_codes: [3, 4]}
deploy:
  stage: deploy
  script: deploy
  when: manual
  timeout: 2h
.template: {script: ignored}
"""


def test_valid_config_gives_the_build_shape() -> None:
    config = process(FULL)
    assert config.stages == [".pre", "build", "test", "deploy", ".post"]
    jobs = {job.name: job for job in config.jobs}
    assert list(jobs) == ["build", "test", "lint", "deploy"]

    build = jobs["build"]
    assert (build.stage, build.stage_idx, build.when, build.allow_failure, build.needs) == (
        "build",
        1,
        "on_success",
        False,
        None,
    )
    assert build.options == {
        "before_script": ["echo default"],
        "script": ["make"],
        "image": {"name": "ruby:3.3", "pull_policy": ["if-not-present"]},
        "services": [{"name": "postgres"}],
        "tags": ["docker"],
        "artifacts": {
            "name": "out",
            "paths": ["out/"],
            "exclude": ["out/*.tmp"],
            "expire_in": "1 week",
            "when": "always",
            "reports": {"junit": ["report.xml"], "dotenv": ["build.env"]},
        },
        "variables": {"GLOBAL": "1", "FLAG": "true"},
        "job_timeout": 1800,
    }

    test = jobs["test"]
    assert test.stage == "test" and test.stage_idx == 2
    assert test.needs == (Need("build"), Need("lint", artifacts=False))  # the optional, absent one is dropped
    assert test.options["script"] == ["make", "test", "echo done"]
    assert "before_script" not in test.options  # [] overrides the default
    assert test.options["after_script"] == ["cleanup"]
    assert test.options["variables"] == {"GLOBAL": "job", "FLAG": "true", "EXTRA": "x"}
    assert test.options["dependencies"] == ["build"]

    lint = jobs["lint"]
    assert lint.options["image"] == {"name": "alpine"} and lint.options["tags"] == []
    assert lint.allow_failure is False and lint.options["allow_failure_criteria"] == {"exit_codes": [3, 4]}

    deploy = jobs["deploy"]
    assert deploy.when == "manual" and deploy.allow_failure is True  # manual jobs may fail by default
    assert deploy.options["job_timeout"] == 7200


def test_mapping_and_defaults() -> None:
    config = process({"build": {"script": "make"}, "pages": {"script": "x", "stage": "deploy", "allow_failure": True}})
    jobs = {job.name: job for job in config.jobs}
    assert jobs["build"].stage == "test" and jobs["build"].stage_idx == 2  # default stage
    assert jobs["pages"].allow_failure is True
    assert process("stages: [.post, b, .pre]\nx: {script: y, stage: b}").stages == [".pre", "b", ".post"]
    assert process("a: {script: x, needs: []}").jobs[0].needs == ()
