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
    /// Print the OpenAPI spec (YAML), as committed in `openapi.yaml`.
    Openapi,
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
            let db = db::connect(&config).await?;
            if config.run_migrations {
                db::migrate(&db).await?;
            }
            let outcome = crate::import::import_file(&db, &file).await?;
            println!(
                "imported {} users; skipped {} whose email has an account already",
                outcome.imported, outcome.skipped
            );
            Ok(())
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
    let db = db::connect(config).await?;
    if config.run_migrations {
        db::migrate(&db).await?;
    }
    let hash = PasswordHasher::new(config.bcrypt_cost)?.hash(password.expose()).await?;
    if accounts::upsert_super_admin(&db, &email, hash).await? {
        println!("created super_admin {}", email.as_str());
    } else {
        println!("{} is now a super_admin (re-activated, password reset)", email.as_str());
    }
    Ok(())
}
