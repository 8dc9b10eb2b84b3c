"""config.pbtxt as the exporter writes it: every field the server applies, an operator's kept."""

from __future__ import annotations

from google.protobuf import text_format

from export.repository import config_text
from protos.inference import model_config_pb2 as mc


def parse(text: str) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())


def test_a_new_config_states_batching_and_the_latest_version_policy():
    c = parse(config_text("m", ["h1", "h2"]))
    assert (c.max_batch_size, c.dynamic_batching.max_queue_delay_microseconds) == (64, 500)
    assert c.version_policy.WhichOneof("policy_choice") == "latest"
    assert c.version_policy.latest.num_versions == 1
    assert [o.dims for o in c.output][1] == [2]


def test_an_operators_batching_and_version_policy_survive_a_new_export():
    existing = parse('max_batch_size: 8 version_policy { all {} } dynamic_batching { '
                     'max_queue_delay_microseconds: 100 preferred_batch_size: [4, 8] }')
    c = parse(config_text("m", ["h1"], existing))
    assert c.max_batch_size == 8 and c.version_policy.HasField("all")
    assert list(c.dynamic_batching.preferred_batch_size) == [4, 8]
    assert c.dynamic_batching.max_queue_delay_microseconds == 100
    specific = parse('version_policy { specific { versions: [1, 3] } }')
    assert list(parse(config_text("m", ["h1"], specific)).version_policy.specific.versions) == [
        1, 3]
