//! What the command generates about itself, from the same definitions it runs on: shell completions and
//! man pages (from the clap command line) and the JSON Schemas of its JSON outputs (from the Rust types,
//! schemars).

use std::{io::Write as _, path::Path};

use clap::{CommandFactory as _, ValueEnum};
use schemars::{JsonSchema, generate::SchemaSettings};
use serde::Serialize;
use snowpipe_manager::{PollOutput, UploadOutput, UploadStatsOutput};

use crate::{
    args::Cli,
    error::CliError,
    output,
    run::{CutUpload, RunOutput},
};

/// The binary's name, as completions and man pages call it.
const NAME: &str = "snowpipe-streaming";

/// Writes the completion script for `shell` on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), NAME, &mut script);
    write_stdout(&script)
}

/// Writes the man pages into `dir`: `snowpipe-streaming.1` and one per command
/// (`snowpipe-streaming-upload.1`, ...). Answers the files written.
pub(crate) fn man_pages(dir: &Path) -> Result<Vec<String>, CliError> {
    let failed = |e: std::io::Error| {
        CliError::Failed(format!(
            "cannot write the man pages to {}: {e}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let command = Cli::command();
    let mut written = Vec::new();
    let mut page = |command: clap::Command, name: String| -> Result<(), CliError> {
        let mut roff = Vec::new();
        clap_mangen::Man::new(command.name(name.clone()))
            .render(&mut roff)
            .map_err(failed)?;
        let file = format!("{name}.1");
        std::fs::write(dir.join(&file), roff).map_err(failed)?;
        written.push(file);
        Ok(())
    };
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(sub.clone(), format!("{NAME}-{}", sub.get_name()))?;
    }
    page(command, NAME.to_owned())?;
    Ok(written)
}

/// The commands whose output has a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemaOf {
    /// upload's answer.
    Upload,
    /// poll's answer.
    Poll,
    /// stats' answer.
    Stats,
    /// run's lines: a file's result, or an upload cut by a signal.
    Run,
}

/// One line of `run`: a file's result (also when a signal interrupted its polling), or an upload a
/// signal cut.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(
    dead_code,
    clippy::large_enum_variant,
    reason = "only its schema is used"
)]
enum RunLine {
    /// A file's result.
    File(RunOutput),
    /// An upload a signal cut.
    Cut(CutUpload),
}

/// The JSON Schema (draft 2020-12) of a command's JSON output, as the command writes it.
pub(crate) fn schema(of: SchemaOf) -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let schema = match of {
        SchemaOf::Upload => generator.into_root_schema_for::<UploadOutput>(),
        SchemaOf::Poll => generator.into_root_schema_for::<PollOutput>(),
        SchemaOf::Stats => generator.into_root_schema_for::<UploadStatsOutput>(),
        SchemaOf::Run => generator.into_root_schema_for::<RunLine>(),
    };
    let mut value = schema.to_value();
    if let Some(object) = value.as_object_mut() {
        let name = of
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        object.insert(
            "$id".to_owned(),
            serde_json::Value::String(format!("https://snowpipe-rs.github.io/schemas/{name}.json")),
        );
    }
    value
}

/// Writes a command's schema on stdout.
pub(crate) fn print_schema(of: SchemaOf) -> Result<(), CliError> {
    output::json_line(&schema(of))
}

fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Failed(format!("cannot write to stdout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_names_the_fields_the_outputs_have() {
        let upload = schema(SchemaOf::Upload).to_string();
        for field in [
            "importingJobIds",
            "importingParameters",
            "abortReason",
            "segments",
        ] {
            assert!(upload.contains(field), "{field} in {upload}");
        }
        assert!(
            !upload.contains("importingTables"),
            "skipped fields stay out"
        );
        let run = schema(SchemaOf::Run).to_string();
        for field in [
            "succeededJobIds",
            "pendingJobIds",
            "unknownJobIds",
            "interrupted",
        ] {
            assert!(run.contains(field), "{field} in {run}");
        }
    }
}
