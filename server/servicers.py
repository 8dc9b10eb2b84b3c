"""Thin RPC handlers for highway.v1 and KServe V2: decode, call, encode.

Every handler is an ``@rpc`` method, run inside :meth:`server.calls.Calls.run`
(status codes, metrics, draining) under its own name; the two streaming RPCs are
``@stream`` methods (:mod:`server.streams`) running the same per-request code.
No ONNX Runtime here: models are reached through the batchers.
"""

from __future__ import annotations

import functools
import logging
from importlib import metadata
from typing import TYPE_CHECKING

from protos.highway.v1 import classifier_pb2 as hw
from protos.highway.v1 import classifier_pb2_grpc as hw_grpc
from protos.inference import grpc_service_pb2 as kserve
from protos.inference import grpc_service_pb2_grpc as kserve_grpc
from protos.inference import model_config_pb2 as mc
from server import codecs, statistics, streams
from server.calls import Calls, rpc
from server.errors import InvalidArgument, ServingError, Unavailable
from server.metrics import Metrics
from server.streams import stream

if TYPE_CHECKING:
    from server.registry import Registry
    from server.repository import ModelVersion
    from server.settings import Settings

log = logging.getLogger(__name__)
SERVER_NAME = "highway-mnist"
PLATFORM = "onnxruntime_onnx"


class Served:
    """What the handlers serve: the live model registry, once the server has started.

    Before that, requests get UNAVAILABLE. Each model version carries its batcher.
    """

    def __init__(self, settings: Settings, metrics: Metrics,
                 peers: statistics.PeerFiles | None = None):
        self.registry: Registry | None = None
        self.settings = settings  # the request limits the handlers enforce and report
        self.metrics = metrics
        self._peers = peers  # the other workers' counters, under --workers N

    def live(self) -> Registry:
        if self.registry is None:
            raise Unavailable("the model is still loading")
        return self.registry

    def get(self, name: str, version: int) -> ModelVersion:
        """The model version asked for (NOT_FOUND if not serving, UNAVAILABLE while loading)."""
        return self.live().get(name, version)

    def versions(self, name: str) -> list[int]:
        """Every serving version of a model, ascending."""
        return self.live().versions(name)

    def all(self) -> list[ModelVersion]:
        """Every serving model version."""
        return self.live().all()

    def explicit(self) -> Registry:
        """The registry, if the model control mode lets clients load and unload."""
        if self.settings.model_control_mode != "explicit":
            # Triton's answer, word for word, in every mode but explicit.
            raise Unavailable("explicit model load / unload is not allowed if polling is "
                              "enabled")
        return self.live()

    def statistics(self, model: ModelVersion) -> statistics.Snapshot:
        """The version's counters over the whole server (every worker's, under --workers)."""
        assert model.batcher is not None
        own = statistics.snapshot(model.batcher.stats)
        if self._peers is None:
            return own
        return statistics.total([own, *self._peers.others(model.name, model.version)])

    async def classify(self, model: ModelVersion, images) -> dict:
        assert model.batcher is not None
        outputs = await model.batcher.infer(images)
        self.metrics.images.inc(len(images))
        return outputs


@functools.cache
def _server_version() -> str:
    """The installed package's version (it cannot change while the process runs)."""
    try:
        return metadata.version(SERVER_NAME)
    except metadata.PackageNotFoundError:
        return "unknown"


class ClassifierServicer(hw_grpc.ClassifierServicer):
    """highway.v1.Classifier."""

    def __init__(self, served: Served, calls: Calls):
        self._s = served
        self._calls = calls

    @rpc
    async def Predict(self, request: hw.PredictRequest) -> hw.PredictResponse:  # noqa: N802
        return await self._predict(request)

    @stream(streams.predict_answer, streams.predict_failure)
    async def PredictStream(self, request: hw.PredictRequest) -> hw.PredictResponse:  # noqa: N802
        return await self._predict(request)

    async def _predict(self, request: hw.PredictRequest) -> hw.PredictResponse:
        model = self._s.get(request.model_name, codecs.check_version(request.model_version))
        images = codecs.decode_predict(request, self._s.settings.max_request_images)
        outputs = await self._s.classify(model, images)
        response = codecs.encode_predict(model.name, model.version, outputs,
                                         request.return_gate_activity)
        response.id = request.id
        return response

    @rpc
    async def GetModelInfo(self, request):  # noqa: N802
        model = self._s.get(request.model_name, codecs.check_version(request.model_version))
        runtime = model.runtime
        return hw.GetModelInfoResponse(
            name=model.name, version=model.version,
            versions=self._s.versions(model.name),
            inputs=[hw.TensorInfo(name=t.name, datatype=t.datatype, shape=t.shape)
                    for t in runtime.inputs],
            outputs=[hw.TensorInfo(name=t.name, datatype=t.datatype, shape=t.shape)
                     for t in runtime.outputs],
            highway_layers=model.highway_layers, execution_provider=runtime.provider,
            max_batch_size=model.batch.max_batch_size,
            max_request_images=self._s.settings.max_request_images,
            metadata=runtime.metadata)


class InferenceServicer(kserve_grpc.GRPCInferenceServiceServicer):
    """inference.GRPCInferenceService (KServe V2) plus Triton's ModelConfig."""

    def __init__(self, served: Served, calls: Calls):
        self._s = served
        self._calls = calls

    def _model(self, name: str, version: str) -> ModelVersion:
        return self._s.get(name, codecs.parse_version(version))

    @rpc
    async def ServerLive(self, request):  # noqa: N802
        return kserve.ServerLiveResponse(live=True)

    @rpc
    async def ServerReady(self, request):  # noqa: N802
        return kserve.ServerReadyResponse(ready=self._calls.ready)

    @rpc
    async def ModelReady(self, request):  # noqa: N802
        try:
            self._model(request.name, request.version)
        except ServingError:
            return kserve.ModelReadyResponse(ready=False)
        return kserve.ModelReadyResponse(ready=self._calls.ready)

    @rpc
    async def ServerMetadata(self, request):  # noqa: N802
        return kserve.ServerMetadataResponse(name=SERVER_NAME, version=_server_version(),
                                             extensions=["model_configuration",
                                                         "model_repository"])

    @rpc
    async def ModelMetadata(self, request):  # noqa: N802
        model = self._model(request.name, request.version)
        tensor = kserve.ModelMetadataResponse.TensorMetadata
        return kserve.ModelMetadataResponse(
            name=model.name, platform=PLATFORM,
            versions=[str(v) for v in self._s.versions(model.name)],
            inputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape)
                    for t in model.runtime.inputs],
            outputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape)
                     for t in model.runtime.outputs])

    @rpc
    async def ModelConfig(self, request):  # noqa: N802
        model = self._model(request.name, request.version)
        config = mc.ModelConfig()
        config.CopyFrom(model.config)  # as applied: the config file, flags filling its gaps
        # Clients read max_batch_size as "most images per request"; the per-run cap the
        # config sets is reported beside it.
        config.max_batch_size = self._s.settings.max_request_images
        config.parameters["execution_provider"].string_value = model.runtime.provider
        config.parameters["max_batch_size_per_run"].string_value = str(
            model.batch.max_batch_size)
        return kserve.ModelConfigResponse(config=config)

    @rpc
    async def ModelStatistics(self, request):  # noqa: N802
        if request.name:
            models = [self._model(request.name, request.version)]
            if not request.version:
                models = [self._s.get(request.name, v) for v in self._s.versions(request.name)]
        else:
            models = self._s.all()
        return kserve.ModelStatisticsResponse(model_stats=[
            codecs.statistics_message(m.name, m.version, self._s.statistics(m)) for m in models])

    @rpc
    async def ModelInfer(self, request: kserve.ModelInferRequest  # noqa: N802
                         ) -> kserve.ModelInferResponse:
        return await self._infer(request)

    @stream(streams.infer_answer, streams.infer_failure)
    async def ModelStreamInfer(self, request: kserve.ModelInferRequest  # noqa: N802
                               ) -> kserve.ModelInferResponse:
        return await self._infer(request)

    async def _infer(self, request: kserve.ModelInferRequest) -> kserve.ModelInferResponse:
        model = self._model(request.model_name, request.model_version)
        images = codecs.decode_infer(request, self._s.settings.max_request_images)
        names = codecs.requested_outputs(request, model.output_names)
        outputs = await self._s.classify(model, images)
        return codecs.encode_infer(request, model.name, model.version, outputs, names)


    @rpc
    async def RepositoryIndex(self, request):  # noqa: N802
        rows = self._s.live().index(request.ready)
        index = kserve.RepositoryIndexResponse.ModelIndex
        return kserve.RepositoryIndexResponse(models=[
            index(name=name, version=version, state=state, reason=reason)
            for name, version, state, reason in rows])

    @rpc
    async def RepositoryModelLoad(self, request):  # noqa: N802
        if request.parameters:
            raise InvalidArgument(f"load parameters ({', '.join(sorted(request.parameters))}) "
                                  "are not supported; put the config and files in the repository")
        await self._s.explicit().load(request.model_name)
        return kserve.RepositoryModelLoadResponse()

    @rpc
    async def RepositoryModelUnload(self, request):  # noqa: N802
        await self._s.explicit().unload(request.model_name)
        return kserve.RepositoryModelUnloadResponse()
