//! `livebaton user add` without the password on its command line (mirrors `src/cli.rs`): read from standard input
//! or from `LIVEBATON_USER_PASSWORD`, so it never shows in `ps`. The stored hash is checked through the library.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use livebaton_admin::accounts::verify_password;
use livebaton_admin::storage::Store;

/// How long one command may take (Argon2 in a debug build on a busy machine).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `livebaton <args> --data-dir <dir>` with a clean environment plus `env`, writing `stdin` to it.
fn livebaton(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_livebaton"));
    for (name, _) in std::env::vars() {
        if name.starts_with("LIVEBATON_") || name == "DATABASE_URL" || name == "REDIS_URL" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied()).env("RUST_LOG", "warn").current_dir(dir);
    let mut child = command
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the livebaton binary starts");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin takes the password");
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("livebaton {args:?} did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().expect("wait");
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child.stdout.take().expect("stdout").read_to_end(&mut stdout).expect("read stdout");
    child.stderr.take().expect("stderr").read_to_end(&mut stderr).expect("read stderr");
    Output { status, stdout, stderr }
}

/// Whether `password` is the stored password of `email` in `dir`'s database.
async fn signs_in(dir: &Path, email: &str, password: &str) -> bool {
    let url = format!("sqlite://{}?mode=rwc", dir.join("livebaton.db").display());
    let store = Store::connect(&url).await.expect("the store opens");
    let user = store.find_user_by_email(email).await.expect("a query").expect("the user exists");
    verify_password(password, Some(&user.password_hash)).await
}

/// The first line of standard input is the password (no `--password`); `LIVEBATON_USER_PASSWORD` works too;
/// `--password-stdin` reads standard input even when the variable is set; nothing on standard input is an error
/// that says where a password can come from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_reads_the_password_from_stdin_or_the_environment() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let add = ["user", "add", "--email", "e@x.io", "--role", "editor"];

    let output = livebaton(dir.path(), &add, &[], "typed on stdin\n");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("e@x.io"), "{output:?}");
    assert!(signs_in(dir.path(), "e@x.io", "typed on stdin").await, "the line without its newline is the password");

    let from_env = [("LIVEBATON_USER_PASSWORD", "from the environment")];
    let output = livebaton(dir.path(), &add, &from_env, "");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(signs_in(dir.path(), "e@x.io", "from the environment").await);

    let stdin_wins = [&add[..], &["--password-stdin"]].concat();
    let output = livebaton(dir.path(), &stdin_wins, &from_env, "explicitly on stdin\r\n");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(signs_in(dir.path(), "e@x.io", "explicitly on stdin").await);

    let output = livebaton(dir.path(), &add, &[], "");
    assert!(!output.status.success(), "no password anywhere must fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no password given"), "{stderr}");
    assert!(signs_in(dir.path(), "e@x.io", "explicitly on stdin").await, "the account is unchanged");
}
