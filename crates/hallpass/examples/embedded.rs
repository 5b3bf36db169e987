//! hallpass embedded in a program, no server: register, log in, check the session on a
//! "request", end it. Run with `cargo run -p hallpass --example embedded`.

use hallpass::service::{Credentials, LoginRequest, NewUser};
use hallpass::{ClientInfo, Error, Password, Scope, Settings, UserRef, Username};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let hp = hallpass::open_sqlite(dir.path().join("example.db"), Settings::default()).await?;
    let app = Scope::parse("example")?;

    // Register.
    let alice = hp
        .register(
            &app,
            NewUser {
                username: Some(Username::parse("alice")?),
                password: Some(Password::new("correct horse battery staple")?),
                ..Default::default()
            },
        )
        .await?;
    println!("registered {} ({})", alice.username.as_ref().map_or("", |u| u.as_str()), alice.id);

    // A wrong password: the library tells the embedding program which half was wrong.
    let wrong = LoginRequest {
        credentials: Credentials::Password {
            login: UserRef::login("ALICE")?,
            password: Password::for_login("not her password")?,
        },
        data: Default::default(),
        client: ClientInfo::default(),
        device: None,
    };
    match hp.login(&app, wrong).await {
        Err(Error::InvalidCredentials(why)) => println!("refused: {why:?}"),
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }

    // Log in (usernames compare case-insensitively).
    let login = hp
        .login(
            &app,
            LoginRequest {
                credentials: Credentials::Password {
                    login: UserRef::login("Alice")?,
                    password: Password::for_login("correct horse battery staple")?,
                },
                data: Default::default(),
                client: ClientInfo { ip: Some("203.0.113.7".into()), user_agent: Some("example".into()) },
                device: None,
            },
        )
        .await?;
    println!("logged in: session {} until {}", login.session.id, login.session.expires_at);

    // Check the session, as a request handler would.
    let (session, user) = hp.get_session(&app, &login.token).await?;
    println!("token belongs to {} (session {})", user.id, session.id);

    // End it; the token no longer works.
    hp.end_session(&app, &login.token).await?;
    match hp.get_session(&app, &login.token).await {
        Err(Error::SessionInvalid) => println!("after logout the token is refused"),
        other => return Err(format!("expected SessionInvalid, got {other:?}").into()),
    }

    let history = hp.login_history(&app, &UserRef::Id(alice.id), None, None).await?;
    for e in history.items {
        println!("login event: {} {} {}", e.at, e.method, e.outcome.as_str());
    }
    Ok(())
}
