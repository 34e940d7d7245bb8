// TEMPORARY STUB while the client is written.
pub mod error {
    #[derive(Debug, thiserror::Error)]
    #[error("stub")]
    pub struct ApiError;
}
pub mod client {
    #[derive(Debug)]
    pub enum AuthScheme {
        ApiKeyHeader,
        Bearer,
    }
    pub struct ClientConfig {
        pub auth: AuthScheme,
        pub concurrency: usize,
        pub requests_per_second: u32,
        pub timeout: std::time::Duration,
    }
    impl ClientConfig {
        pub fn new(_: url::Url, _: secrecy::SecretString) -> Self {
            ClientConfig {
                auth: AuthScheme::ApiKeyHeader,
                concurrency: 1,
                requests_per_second: 1,
                timeout: std::time::Duration::ZERO,
            }
        }
    }
    pub struct Client;
    impl Client {
        pub fn new(_: ClientConfig) -> Result<Client, super::error::ApiError> {
            Err(super::error::ApiError)
        }
    }
}
pub struct MistralProvider;
impl MistralProvider {
    pub fn new(_: client::Client) -> Self {
        MistralProvider
    }
}
impl super::Provider for MistralProvider {
    async fn read(&self) -> Result<crate::model::LiveOrg, super::ProviderError> {
        unimplemented!()
    }
    async fn perform(&self, _: super::Operation) -> Result<super::Outcome, super::ProviderError> {
        unimplemented!()
    }
}
