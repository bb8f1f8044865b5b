//! The command line. Settings come from the environment (and `.env`); the
//! subcommands only choose what to do with them.

use std::io::BufRead;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{
    accounts,
    app::Application,
    auth::password::PasswordHasher,
    config::Config,
    db,
    domain::{Email, NewPassword},
};

#[derive(Parser)]
#[command(name = "latchkey", version, about = "Cookie-session authentication service for browser SPAs")]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default). Runs migrations first unless RUN_MIGRATIONS=false.
    #[command(after_long_help = crate::config::help_text())]
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Create a super_admin account, or promote (and re-activate) an existing one.
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// The password. Omit it to read one line from standard input instead,
        /// which keeps it out of the shell history and the process list.
        #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Import users from another system, keeping their passwords: a JSON Lines
    /// file of {"email", "password_hash" (bcrypt: $2a$, $2b$ or $2y$),
    /// "full_name"?, "role"?, "is_active"?, "email_verified"?}. All or nothing;
    /// emails that have an account already are skipped.
    ImportUsers {
        /// The JSON Lines file.
        file: std::path::PathBuf,
    },
    /// Access token signing keys (JWT_ALGORITHM EdDSA or ES256).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Print the OpenAPI spec (YAML), as committed in `openapi.yaml`.
    Openapi,
}

#[derive(Subcommand)]
enum KeysAction {
    /// Add a key of JWT_ALGORITHM: published at once, signing after
    /// KEY_PUBLISH_DELAY. The key it replaces stays published until the last
    /// token it signed has expired.
    Rotate,
    /// List the keys and where each is in its life.
    List,
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        print!("{}", crate::api::spec_yaml());
        return Ok(());
    }
    let _ = dotenvy::dotenv();
    let mut config = Config::from_env()?;
    let _log_writer = crate::telemetry::init(&config.rust_log, config.log_format);
    config.validate()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Application::build(config).await?.run_until_stopped().await,
        Command::Migrate => {
            let db = db::connect(&config).await?;
            db::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::CreateAdmin { email, password } => {
            let password = match password {
                Some(p) => p,
                None => read_password_line()?,
            };
            create_admin(&config, &email, &password).await
        }
        Command::ImportUsers { file } => {
            let db = db::connect_migrated(&config).await?;
            let outcome = crate::import::import_file(&db, &file).await?;
            println!(
                "imported {} users; skipped {} whose email has an account already",
                outcome.imported, outcome.skipped
            );
            Ok(())
        }
        Command::Keys { action } => {
            let db = db::connect_migrated(&config).await?;
            match action {
                KeysAction::Rotate => rotate_key(&config, &db).await,
                KeysAction::List => list_keys(&config, db).await,
            }
        }
        Command::Openapi => unreachable!("handled above"),
    }
}

fn read_password_line() -> anyhow::Result<String> {
    eprintln!("password (one line on standard input):");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn create_admin(config: &Config, email: &str, password: &str) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email {}", e.message))?;
    let password = NewPassword::parse("password", password, &[email.as_str()])
        .map_err(|e| anyhow::anyhow!("--password {}", e.message))?;
    let db = db::connect_migrated(config).await?;
    let hash = PasswordHasher::new(config.bcrypt_cost, config.bcrypt_thread_nice)?.hash(password.expose()).await?;
    if accounts::upsert_super_admin(&db, &email, hash).await? {
        println!("created super_admin {}", email.as_str());
    } else {
        println!("{} is now a super_admin (re-activated, password reset)", email.as_str());
    }
    Ok(())
}

async fn rotate_key(config: &Config, db: &sea_orm::DatabaseConnection) -> anyhow::Result<()> {
    use crate::auth::signing_keys;
    if !config.jwt_algorithm.is_asymmetric() {
        anyhow::bail!(
            "JWT_ALGORITHM is HS256, which signs with JWT_SECRET: set JWT_ALGORITHM=EdDSA or ES256 to use key pairs"
        );
    }
    let data_key = cli_data_key(config)?;
    let delay = chrono::Duration::from_std(config.key_publish_delay).context("KEY_PUBLISH_DELAY")?;
    let row = signing_keys::create(db, &data_key, config.jwt_algorithm, crate::clock::now() + delay).await?;
    println!("added {} key {}: published now, signs from {}", row.algorithm, row.kid, row.signs_from.to_rfc3339());
    Ok(())
}

async fn list_keys(config: &Config, db: sea_orm::DatabaseConnection) -> anyhow::Result<()> {
    use crate::auth::signing_keys::{KeyRing, KeyState};
    if !config.jwt_algorithm.is_asymmetric() {
        println!("JWT_ALGORITHM is HS256: access tokens are signed with JWT_SECRET; there are no key pairs in use");
        return Ok(());
    }
    let ring = KeyRing::from_config(config, db.clone(), db, Some(std::sync::Arc::new(cli_data_key(config)?)));
    ring.reload().await?;
    println!("{:<44} {:<6} {:<8} STATE", "KID", "ALG", "OPENS");
    for (kid, algorithm, opens, state) in ring.states(crate::clock::now()) {
        let state = match state {
            KeyState::Next(from) => format!("next: published, signs from {}", from.to_rfc3339()),
            KeyState::Signing if algorithm == config.jwt_algorithm => "signing".to_owned(),
            KeyState::Signing => format!("signing where JWT_ALGORITHM is {}", algorithm.name()),
            KeyState::Retiring(until) => format!("retired: published until {}", until.to_rfc3339()),
            KeyState::Retired => "retired: unpublished, deleted at the next purge".to_owned(),
        };
        let opens = if opens { "yes" } else { "NO" };
        println!("{kid:<44} {:<6} {opens:<8} {state}", algorithm.name());
    }
    Ok(())
}

/// The running instances' `DATA_ENCRYPTION_KEY`: a random development key
/// would seal a private half that no instance could open.
fn cli_data_key(config: &Config) -> anyhow::Result<crate::auth::crypto::DataKey> {
    crate::auth::crypto::DataKey::from_config(config)?
        .context("DATA_ENCRYPTION_KEY must be set, the same as the running instances' (it seals the private keys)")
}
