//! The sockets of the WebSocket API (live events), through API Gateway's
//! Management API: post a message to a connection, or close it.

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::config::http::HttpResponse;
use aws_sdk_apigatewaymanagement::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_apigatewaymanagement::primitives::Blob;
use switchboard_model::ports::{SocketError, Sockets};

pub struct ApiGatewaySockets {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ApiGatewaySockets {
    /// `endpoint`: `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`.
    pub fn new(sdk: &aws_config::SdkConfig, endpoint: &str) -> Self {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .build();
        Self {
            client: aws_sdk_apigatewaymanagement::Client::from_conf(config),
        }
    }
}

/// 410 `GoneException`: the browser is gone (the socket closed without a
/// `$disconnect` we saw, or long ago).
fn failed<E>(op: &str, err: &SdkError<E, HttpResponse>) -> SocketError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
{
    let gone = err.raw_response().is_some_and(|r| r.status().as_u16() == 410)
        || err.as_service_error().and_then(ProvideErrorMetadata::code) == Some("GoneException");
    if gone {
        SocketError::Gone
    } else {
        SocketError::Unavailable(crate::errors::describe("API Gateway", op, err))
    }
}

#[async_trait]
impl Sockets for ApiGatewaySockets {
    async fn send(&self, connection: &str, text: &str) -> Result<(), SocketError> {
        self.client
            .post_to_connection()
            .connection_id(connection)
            .data(Blob::new(text.as_bytes()))
            .send()
            .await
            .map(drop)
            .map_err(|err| failed("PostToConnection", &err))
    }

    async fn close(&self, connection: &str) -> Result<(), SocketError> {
        self.client
            .delete_connection()
            .connection_id(connection)
            .send()
            .await
            .map(drop)
            .map_err(|err| failed("DeleteConnection", &err))
    }
}
