//! Where each option's value comes from: flags win over `SNOWPIPE_STREAMING_*` environment variables, which
//! win over the `--config` TOML file, which wins over the defaults.
//!
//! clap does flags, environment and defaults itself; the file slots in by becoming the defaults: after a
//! first parse finds the file, each key of the file replaces the default of its option, and the command
//! line is parsed again.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use clap::{CommandFactory as _, FromArgMatches as _};

use crate::{
    args::Cli,
    error::{CliError, usage},
};

/// Options that cannot be set in the file: the file itself, and the inputs of one command.
const NOT_IN_FILE: &[&str] = &["config", "help", "version"];

/// Options of commands, besides the global ones, that the file may set: (command, option).
const COMMAND_KEYS: &[(&str, &str)] = &[("run", "poll-interval")];

/// Options whose value is a path: a relative one in the file is relative to the file.
const PATH_KEYS: &[&str] = &[
    "destination",
    "state-dir",
    "private-key-file",
    "metrics-file",
];

/// Parses the command line with the environment and the config file.
pub(crate) fn parse<I, T>(args: I) -> Result<Cli, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let matches = Cli::command().try_get_matches_from(&args)?;
    let Some(path) = matches.get_one::<PathBuf>("config").cloned() else {
        return Ok(Cli::from_arg_matches(&matches)?);
    };
    let command = with_file_defaults(Cli::command(), &path)?;
    let matches = command.try_get_matches_from(&args)?;
    Ok(Cli::from_arg_matches(&matches)?)
}

/// The command with the file's values as the options' defaults.
fn with_file_defaults(mut command: clap::Command, path: &Path) -> Result<clap::Command, CliError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read the config file {shown} (--config): {e}"
        ))
    })?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| usage(format!("the config file {shown} is not valid TOML: {e}")))?;
    let base = path.parent().unwrap_or_else(|| Path::new(""));
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let mut text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                return Err(usage(format!(
                    "config file {shown}: key `{key}` must be a string, a number or a boolean"
                )));
            }
        };
        if PATH_KEYS.contains(&name.as_str()) && Path::new(&text).is_relative() {
            text = base.join(&text).display().to_string();
        }
        let global = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && !NOT_IN_FILE.contains(&name.as_str()))
            .map(|a| a.get_id().clone());
        if let Some(id) = global {
            check_value(&command, &id, &text, path, key)?;
            command = command.mut_arg(id, |arg| arg.default_value(text));
            continue;
        }
        let Some(&(sub, _)) = COMMAND_KEYS.iter().find(|(_, option)| *option == name) else {
            return Err(usage(format!(
                "config file {shown}: unknown key `{key}`; known keys: {}",
                known_keys(&command).join(", ")
            )));
        };
        let id = command
            .find_subcommand(sub)
            .and_then(|s| {
                s.get_arguments()
                    .find(|a| a.get_long() == Some(name.as_str()))
            })
            .map(|a| a.get_id().clone())
            .ok_or_else(|| CliError::Failed(format!("option --{name} of `{sub}` is missing")))?;
        if let Some(subcommand) = command.find_subcommand(sub) {
            check_value(subcommand, &id, &text, path, key)?;
        }
        command = command.mut_subcommand(sub, |s| s.mut_arg(id, |arg| arg.default_value(text)));
    }
    Ok(command)
}

/// Checks a value from the file the way clap would check it on the command line, so that the error names
/// the file and the key rather than a default nobody wrote.
fn check_value(
    command: &clap::Command,
    id: &clap::Id,
    value: &str,
    path: &Path,
    key: &str,
) -> Result<(), CliError> {
    let Some(arg) = command.get_arguments().find(|a| a.get_id() == id) else {
        return Ok(());
    };
    let problem = match arg.get_action() {
        clap::ArgAction::Count => value
            .parse::<u8>()
            .err()
            .map(|e| format!("expected a small count such as 1 or 2, got {value:?} ({e})")),
        clap::ArgAction::SetTrue | clap::ArgAction::SetFalse => {
            (!matches!(value, "true" | "false"))
                .then(|| format!("expected true or false, got {value:?}"))
        }
        _ => {
            // The option alone in a command of its own: clap checks the value as on the command line.
            let long = arg.get_long().unwrap_or_default();
            let alone = clap::Command::new("snowpipe-streaming")
                .no_binary_name(true)
                .arg(arg.clone().global(false).required(false));
            alone
                .try_get_matches_from([format!("--{long}={value}")])
                .err()
                .map(|e| clap_message(&e))
        }
    };
    match problem {
        Some(problem) => Err(usage(format!(
            "config file {}: key `{key}`: {problem}",
            path.display()
        ))),
        None => Ok(()),
    }
}

/// The first line of a clap error, without its `error: ` prefix.
fn clap_message(error: &clap::Error) -> String {
    let text = error.to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

fn known_keys(command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|long| !NOT_IN_FILE.contains(long))
        .map(str::to_owned)
        .chain(COMMAND_KEYS.iter().map(|(_, option)| (*option).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::args::{Command, LogFormat};

    fn config(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    fn parse_with(file: &tempfile::NamedTempFile, rest: &[&str]) -> Result<Cli, CliError> {
        let mut args = vec![
            "snowpipe-streaming".to_owned(),
            "--config".to_owned(),
            file.path().display().to_string(),
        ];
        args.extend(rest.iter().map(|s| (*s).to_owned()));
        parse(args)
    }

    #[test]
    fn the_file_fills_what_flags_leave_unset() {
        let file = config(
            "service-url = \"http://file:1\"\nstuck_threshold = \"2m\"\nretry-max = 9\nno-compression = true\n\
             log-format = \"json\"\nverbose = 2\npoll-interval = \"250ms\"\ndestination = \"dest.json\"\n\
             state-dir = \"state\"\nlock_timeout = \"5s\"\n",
        );
        let cli = parse_with(&file, &["--retry-max", "1", "run", "--file", "a.jsonl"]).unwrap();
        let g = &cli.global;
        assert_eq!(g.service_url.as_deref(), Some("http://file:1"));
        assert_eq!(g.stuck_threshold, Duration::from_secs(120));
        assert_eq!(g.retry_max, 1, "the flag wins");
        assert!(g.no_compression);
        assert_eq!(g.log_format, LogFormat::Json);
        assert_eq!(g.verbose, 2);
        assert_eq!(
            g.destination.as_deref(),
            Some(file.path().parent().unwrap().join("dest.json").as_path()),
            "relative to the file"
        );
        assert_eq!(
            g.state_dir,
            file.path().parent().unwrap().join("state"),
            "relative to the file"
        );
        assert_eq!(g.lock_timeout, Duration::from_secs(5));
        assert_eq!(g.request_timeout, Duration::from_secs(60), "default kept");
        let Command::Run(run) = cli.command else {
            panic!("run expected")
        };
        assert_eq!(run.poll_interval, Duration::from_millis(250));
    }

    #[test]
    fn bad_files_are_usage_errors_naming_the_key() {
        let message = |text: &str| match parse_with(&config(text), &["demo"]) {
            Err(CliError::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        };
        let m = message("colour = \"blue\"\n");
        assert!(
            m.contains("unknown key `colour`") && m.contains("service-url"),
            "{m}"
        );
        let m = message("stuck-threshold = \"soon\"\n");
        assert!(m.contains("`stuck-threshold`") && m.contains("soon"), "{m}");
        let m = message("no-compression = \"maybe\"\n");
        assert!(m.contains("`no-compression`"), "{m}");
        let m = message("retry-max = [1]\n");
        assert!(m.contains("`retry-max`"), "{m}");
        let m = message("config = \"other.toml\"\n");
        assert!(m.contains("unknown key `config`"), "{m}");
        let m = message("not toml at all");
        assert!(m.contains("not valid TOML"), "{m}");
    }

    #[test]
    fn a_missing_file_is_a_usage_error_naming_it() {
        let error = parse([
            "snowpipe-streaming",
            "--config",
            "/nonexistent/x.toml",
            "demo",
        ])
        .err()
        .unwrap();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("/nonexistent/x.toml"), "{error}");
    }
}
