"""Our KServe V2 / Triton definitions match the ones compiled into tritonclient.

tritonclient registers its own ``inference.*`` messages in the default protobuf
pool, which clashes with ours in one process; so the comparison runs in a
subprocess that receives our file descriptors as bytes.
"""

import json
import subprocess
import sys

from protos.inference import grpc_service_pb2, model_config_pb2

COMPARE = r"""
import json, sys
from google.protobuf import descriptor_pb2
from tritonclient.grpc import model_config_pb2, service_pb2

def index(fdp, table):
    def walk(prefix, messages):
        for m in messages:
            name = f"{prefix}.{m.name}"
            table[name] = {f.name: [f.number, f.type, f.label, f.type_name] for f in m.field}
            walk(name, m.nested_type)
    walk("." + fdp.package, fdp.message_type)
    for e in fdp.enum_type:
        table["." + fdp.package + "." + e.name] = {v.name: v.number for v in e.value}
    for s in fdp.service:
        for m in s.method:
            table[f"rpc {s.name}.{m.name}"] = [m.input_type, m.output_type,
                                                m.client_streaming, m.server_streaming]

theirs = {}
for mod in (model_config_pb2, service_pb2):
    fdp = descriptor_pb2.FileDescriptorProto()
    mod.DESCRIPTOR.CopyToProto(fdp)
    index(fdp, theirs)
ours = {}
for blob in json.load(sys.stdin):
    index(descriptor_pb2.FileDescriptorProto.FromString(bytes.fromhex(blob)), ours)
problems = []
for name, fields in ours.items():
    if name not in theirs:
        problems.append(f"{name}: not in tritonclient")
    elif isinstance(fields, dict):
        for field, spec in fields.items():
            if theirs[name].get(field) != spec:
                problems.append(f"{name}.{field}: ours {spec}, theirs {theirs[name].get(field)}")
    elif fields != theirs[name]:
        problems.append(f"{name}: ours {fields}, theirs {theirs[name]}")
print(json.dumps({"problems": problems, "compared": len(ours)}))
"""


def test_every_message_field_enum_and_rpc_matches_tritonclient():
    blobs = [m.DESCRIPTOR.serialized_pb.hex() for m in (model_config_pb2, grpc_service_pb2)]
    done = subprocess.run([sys.executable, "-c", COMPARE], input=json.dumps(blobs),
                          capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(done.stdout)
    assert result["problems"] == []
    assert result["compared"] > 20
