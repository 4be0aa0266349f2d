//! The boundary's conformance suite (`snowpipe_api::conformance`) against [`RestClient`] talking to the
//! emulator's REST API over HTTP: the checks the in-memory and sidecar backends pass.
//!
//! Two checks need what only the service can do. A restart: REST channels live in Snowflake, not in a
//! process that restarts, so what a restart does to a client — every channel gone, its uncommitted rows
//! with it — is done here by dropping every channel on the service (as an expiry does). An invalid
//! channel: the emulator's `invalidate_rest_channel`.

use async_trait::async_trait;
use serde_json::Value;
use snowpipe_api::{Backend, ChannelHandle, ChannelRef, TableRef, conformance::Harness};
use snowpipe_emulator::RestChannelName;
use snowpipe_rest::RestClient;

use crate::support::{self, Setup, channel, quoted, rest_name, table_in};

struct Rest(Setup);

async fn rest() -> Rest {
    Rest(support::setup().await)
}

#[async_trait]
impl Harness for Rest {
    fn backend(&self) -> &dyn Backend {
        let client: &RestClient = &self.0.client;
        client
    }

    async fn channel(&self, table: &str) -> ChannelRef {
        support::create_table(self.0.control(), table);
        channel(table)
    }

    async fn missing_table(&self) -> ChannelRef {
        channel("NO_SUCH_TABLE")
    }

    async fn missing_schema(&self) -> ChannelRef {
        ChannelRef {
            table: table_in("NO_SUCH_SCHEMA", "T"),
            ..channel("T")
        }
    }

    async fn commit(&self) {
        self.0.control().flush();
    }

    async fn rows(&self, table: &TableRef) -> Vec<Value> {
        self.0
            .control()
            .rows(
                &quoted(&table.database),
                &quoted(&table.schema),
                &quoted(&table.table),
            )
            .unwrap_or_default()
    }

    async fn restart(&self) {
        let control = self.0.control();
        for info in control.rest_channels() {
            let name = RestChannelName::new(
                &quoted(&info.database),
                &quoted(&info.schema),
                &quoted(&info.pipe),
                &quoted(&info.channel),
            );
            assert!(control.drop_rest_channel(&name), "{name:?}");
        }
        assert!(control.rest_channels().is_empty());
    }

    async fn invalidate(&self, channel: &ChannelHandle) {
        assert!(
            self.0
                .control()
                .invalidate_rest_channel(&rest_name(&channel.channel)),
            "{channel:?}"
        );
    }
}

snowpipe_api::conformance_tests!(rest().await);
