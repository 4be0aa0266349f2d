//! The boundary's conformance suite (`snowpipe_api::conformance`) against the sidecar backend, talking to the
//! emulator over real HTTP: the same checks the in-memory backend passes, and that the REST backend will.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use snowpipe_api::{
    Backend, ChannelHandle, ChannelRef, Secret, TableRef,
    conformance::Harness,
    sidecar::{Account, HttpClient, HttpConfig, Sidecar},
};
use snowpipe_emulator::{Emulator, demo};

struct Emulated {
    emulator: Emulator,
    backend: Sidecar,
}

async fn emulated() -> Emulated {
    let emulator = Emulator::builder()
        .commit_lag(Duration::ZERO)
        .start()
        .await
        .expect("emulator starts");
    let client = HttpClient::new(HttpConfig {
        base_url: emulator.base_url(),
        ..HttpConfig::default()
    })
    .expect("client builds");
    let account = Account {
        account: demo::ACCOUNT.into(),
        user: demo::USER.into(),
        role: demo::ROLE.into(),
        private_key: Secret::new(demo::ENCRYPTED_PRIVATE_KEY_PEM),
        private_key_passphrase: Secret::new(demo::PRIVATE_KEY_PASSPHRASE),
    };
    Emulated {
        emulator,
        backend: Sidecar::new(client, account),
    }
}

fn channel_on(schema: &str, table: &str) -> ChannelRef {
    ChannelRef {
        table: TableRef {
            database: demo::DATABASE.into(),
            schema: schema.into(),
            table: table.into(),
            enable_iceberg: false,
        },
        destination: "dest".into(),
        instance: "1".into(),
    }
}

#[async_trait]
impl Harness for Emulated {
    fn backend(&self) -> &dyn Backend {
        &self.backend
    }

    async fn channel(&self, table: &str) -> ChannelRef {
        self.emulator
            .control()
            .execute_sql(
                &format!("CREATE TABLE IF NOT EXISTS PUBLIC.{table} (ID VARCHAR, N NUMBER)"),
                Some(demo::DATABASE),
                None,
            )
            .expect("table created");
        channel_on("PUBLIC", table)
    }

    async fn missing_table(&self) -> ChannelRef {
        channel_on("PUBLIC", "NO_SUCH_TABLE")
    }

    async fn missing_schema(&self) -> ChannelRef {
        channel_on("NO_SUCH_SCHEMA", "T")
    }

    async fn commit(&self) {
        self.emulator.control().flush();
    }

    async fn rows(&self, table: &TableRef) -> Vec<Value> {
        self.emulator
            .control()
            .rows(&table.database, &table.schema, &table.table)
            .unwrap_or_default()
    }

    async fn restart(&self) {
        self.emulator.control().restart();
    }

    async fn invalidate(&self, channel: &ChannelHandle) {
        assert!(self.emulator.control().invalidate_channel(&channel.id));
    }
}

snowpipe_api::conformance_tests!(emulated().await);
