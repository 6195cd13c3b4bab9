//! OTLP/gRPC: the `LogsService/Export` call of OpenTelemetry's log exporters, answered from
//! the same role table and token checks as the HTTP API (the route guard runs before the
//! service; a refused caller gets HTTP 401/403, which gRPC clients read as `UNAUTHENTICATED`
//! / `PERMISSION_DENIED`), storing through the same door as `POST /v1/logs`.

#[allow(unused_imports)]
use super::*;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};

/// The gRPC method's path.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// The router of the OTLP/gRPC listener: the one method, behind the role table.
pub fn grpc_router(state: Shared) -> Router {
    let limit = state.max_body_bytes;
    let service = LogsServiceServer::new(GrpcLogs {
        state: Arc::clone(&state),
    })
    .max_decoding_message_size(limit)
    .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    Router::new()
        .route_service(EXPORT_PATH, service)
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            route_guard,
        ))
        .route_layer(axum::middleware::from_fn(listed_routes_only))
        .with_state(state)
}

struct GrpcLogs {
    state: Shared,
}

#[tonic::async_trait]
impl LogsService for GrpcLogs {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let state = &self.state;
        let Some(caller) = request.extensions().get::<Caller>().cloned() else {
            return Err(tonic::Status::unauthenticated("no caller"));
        };
        let Some(ConnectInfo(peer)) = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
        else {
            return Err(tonic::Status::internal("no peer address"));
        };
        let request = request.into_inner();
        state
            .ingest
            .metrics
            .bytes
            .add("otlp", prost::Message::encoded_len(&request) as u64);
        let ctx = context(state, format!("otlp:{}", caller.principal.name), peer);
        let decoded = tokio::task::spawn_blocking(move || vigil_otlp::events(&request, &ctx)).await;
        let Ok(decoded) = decoded else {
            return Err(tonic::Status::unavailable(
                "log records not stored: the parser failed on this request; retry later",
            ));
        };
        match store(
            state,
            decoded.events,
            vigil_ingest::Listener::Otlp,
            None,
            &caller.principal,
        )
        .await
        {
            Ok(_) => Ok(tonic::Response::new(vigil_otlp::response(decoded.dropped))),
            // UNAVAILABLE, not RESOURCE_EXHAUSTED: OTLP exporters retry RESOURCE_EXHAUSTED only
            // with a RetryInfo, and drop the batch otherwise.
            Err(IngestError::Overloaded) => {
                state.ingest.metrics.http_rejected.add("overloaded", 1);
                Err(tonic::Status::unavailable("the ledger is behind; retry"))
            }
            Err(e) => Err(tonic::Status::unavailable(format!(
                "log records not stored: {e}"
            ))),
        }
    }
}
