"""Settings: flags, HIGHWAY_* environment variables, defaults, refusals."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import server.settings as settings_module
from server.settings import Settings, default_repository, from_args, parser


def test_defaults_follow_triton_ports_and_the_shipped_repository():
    s = from_args([], environ={})
    assert (s.grpc_port, s.metrics_port, s.device) == (8001, 8002, "auto")
    assert s.model_repository == default_repository()
    # models/ of the working directory: the checkout's when run there, wherever the
    # package is installed (tests/test_packaging.py checks a non-editable install).
    assert default_repository() == Path("models")
    assert s.max_message_bytes >= 64 * 1024 * 1024


def test_every_flag_also_reads_its_environment_variable():
    env = {"HIGHWAY_GRPC_PORT": "9001", "HIGHWAY_MAX_QUEUE_DELAY_US": "0",
           "HIGHWAY_MODEL_REPOSITORY": "/srv/models", "HIGHWAY_DEVICE": "cpu",
           "HIGHWAY_GRACE_PERIOD_S": "2.5"}
    s = from_args([], environ=env)
    assert (s.grpc_port, s.max_queue_delay_us, s.device, s.grace_period_s) == (9001, 0, "cpu", 2.5)
    assert s.model_repository == Path("/srv/models")
    help_text = parser().format_help()
    for f in fields(Settings):
        assert f"HIGHWAY_{f.name.upper()}" in help_text


def test_flags_win_over_the_environment():
    s = from_args(["--grpc-port", "7001", "--max-batch-size", "8"],
                  environ={"HIGHWAY_GRPC_PORT": "9001"})
    assert (s.grpc_port, s.max_batch_size) == (7001, 8)


@pytest.mark.parametrize("argv,env,fragment", [
    (["--device", "tpu"], {}, "--device"),
    ([], {"HIGHWAY_GRPC_PORT": "eighty"}, "--grpc-port"),
    (["--max-batch-size", "0"], {}, "--max-batch-size"),
    (["--grpc-port", "70000"], {}, "not a port"),
])
def test_bad_values_are_refused_naming_the_flag(argv, env, fragment):
    with pytest.raises(ValueError, match=fragment):
        from_args(argv, environ=env)


def test_model_control_flags_parse_and_contradictions_are_refused():
    s = from_args(["--model-control-mode", "explicit", "--load-model", "a", "--load-model", "b"],
                  environ={})
    assert (s.model_control_mode, s.load_model) == ("explicit", ("a", "b"))
    s = from_args([], environ={"HIGHWAY_MODEL_CONTROL_MODE": "explicit",
                               "HIGHWAY_LOAD_MODEL": "a, b", "HIGHWAY_REPOSITORY_POLL_SECS": "2"})
    assert (s.load_model, s.repository_poll_secs) == (("a", "b"), 2.0)
    for argv, fragment in ((["--model-control-mode", "auto"], "--model-control-mode"),
                           (["--load-model", "a"], "needs --model-control-mode explicit"),
                           (["--model-control-mode", "poll", "--repository-poll-secs", "0"],
                            "--repository-poll-secs"),
                           (["--model-control-mode", "explicit", "--workers", "2"],
                            "needs --workers 1")):
        with pytest.raises(ValueError, match=fragment):
            from_args(argv, environ={})


def test_values_get_their_declared_types_whether_or_not_annotations_are_strings(monkeypatch):
    """The conversions follow the real types, not the annotations' spelling: the same
    module without ``from __future__ import annotations`` reads the same values."""
    source = Path(settings_module.__file__).read_text()
    assert "from __future__ import annotations\n" in source
    spec = importlib.util.spec_from_loader("settings_eager", loader=None)
    eager = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "settings_eager", eager)  # dataclasses look it up
    exec(compile(source.replace("from __future__ import annotations\n", ""), "eager", "exec"),
         eager.__dict__)
    env = {"HIGHWAY_GRPC_PORT": "9001", "HIGHWAY_GRACE_PERIOD_S": "2.5",
           "HIGHWAY_MODEL_REPOSITORY": "/srv/models", "HIGHWAY_HOST": "127.0.0.1",
           "HIGHWAY_MODEL_CONTROL_MODE": "explicit", "HIGHWAY_LOAD_MODEL": "a, b"}
    for module in (settings_module, eager):
        s = module.from_args(["--max-batch-size", "8"], environ=env)
        assert (s.grpc_port, s.grace_period_s, s.max_batch_size) == (9001, 2.5, 8)
        assert s.load_model == ("a", "b")
        assert module.from_args(["--model-control-mode", "explicit", "--load-model", "c"],
                                environ={}).load_model == ("c",)
        assert type(s.grpc_port) is int and type(s.grace_period_s) is float
        assert s.model_repository == Path("/srv/models") and s.host == "127.0.0.1"
        with pytest.raises(ValueError, match="not a valid int"):
            module.from_args([], environ={"HIGHWAY_MAX_QUEUE": "many"})
