//! A small valid ceremony (init-token, login, an EC key, its export) and its answers:
//! the base that script and answers tests break one field at a time.

/// The script: every later test edits one field of it.
pub const GOOD: &str = r#"
[ceremony]
id = "t"
title = "Test"
version = 1
token = "tok"

[roles]
administrator = 1
witness = 1

[[step]]
id = "init"
kind = "init-token"
so-pin = "so"
user-pin = "user"
sign-off = ["administrator"]

[[step]]
id = "login"
kind = "login"
pin = "user"

[[step]]
id = "gen-p256"
kind = "generate-key"
algorithm = "ec-p256"
label = "k1"
key-id = "01"
sign-off = ["administrator", "witness"]

[[step]]
id = "export"
kind = "export-public-key"
key = "k1"
pem = "k1.pem"
"#;

/// Its answers file: secrets from `so.pin`/`user.pin`, Ada and Walt signing off.
pub const ANSWERS: &str = r#"
[secrets]
so = "file:so.pin"
user = "file:user.pin"

[[confirm]]
step = "init"

[[sign-off]]
step = "init"
role = "administrator"
name = "Ada"

[[sign-off]]
step = "gen-p256"
role = "administrator"
name = "Ada"

[[sign-off]]
step = "gen-p256"
role = "witness"
name = "Walt"

[[acknowledge]]
step = "gen-p256"
name = "Walt"

[[acknowledge]]
step = "export"
name = "Walt"
"#;
