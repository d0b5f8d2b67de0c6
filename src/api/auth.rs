//! Who may use the API: bearer tokens, each with a name (the actor in the audit trail) and a
//! role. Tokens come from a TOML file, from `AEGIS_API_TOKENS=name:role:secret,...`, or, on a
//! loopback address with none configured, from one admin token made up at start (as Jupyter
//! does). A presented token is compared with every configured one in constant time, and
//! secrets are never logged or printed but in the ready-to-open URL.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use super::ApiError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read the fleet, alerts and history.
    Viewer,
    /// Also act on alerts and send vehicles commands.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// Whether alert actions and commands are allowed.
    pub fn may_operate(self) -> bool {
        self >= Role::Operator
    }
}

impl std::str::FromStr for Role {
    type Err = ApiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(ApiError::Tokens(format!("unknown role `{other}` (viewer, operator or admin)"))),
        }
    }
}

/// One configured token.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Who holds it: the actor named in the audit trail.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The secret presented as `Bearer <secret>`.
    pub secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Token").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

/// Who a request is from, once its token matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Vec<Token>);

/// A tokens file: `[[token]]` tables of `name`, `role`, `secret`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    token: Vec<Token>,
}

/// Secrets shorter than this are refused: a token is the only thing between the network and
/// the fleet's controls.
const MIN_SECRET_LEN: usize = 16;

impl Tokens {
    /// Tokens from `name:role:secret` items separated by commas.
    pub fn parse_list(list: &str) -> Result<Self, ApiError> {
        let tokens = list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .enumerate()
            .map(|(i, item)| {
                let mut parts = item.splitn(3, ':');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(name), Some(role), Some(secret)) => Ok(Token { name: name.to_owned(), role: role.parse()?, secret: secret.to_owned() }),
                    _ => Err(ApiError::Tokens(format!("item {} is not name:role:secret", i + 1))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::checked(tokens)
    }

    /// Tokens from a TOML file of `[[token]]` tables.
    pub fn from_toml(text: &str) -> Result<Self, ApiError> {
        let file: TokensFile = toml::from_str(text).map_err(|e| ApiError::Tokens(e.message().to_owned()))?;
        Self::checked(file.token)
    }

    /// Tokens from the file at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ApiError> {
        let text = std::fs::read_to_string(path).map_err(|source| ApiError::TokensFile { path: path.display().to_string(), source })?;
        Self::from_toml(&text)
    }

    fn checked(tokens: Vec<Token>) -> Result<Self, ApiError> {
        for token in &tokens {
            if token.name.is_empty() {
                return Err(ApiError::Tokens("a token without a name".into()));
            }
            if token.secret.len() < MIN_SECRET_LEN {
                return Err(ApiError::Tokens(format!("the secret of `{}` is shorter than {MIN_SECRET_LEN} characters", token.name)));
            }
        }
        Ok(Self(tokens))
    }

    /// One admin token with a random secret; returns the secret too, for the printed URL.
    pub fn generated_admin() -> (Self, String) {
        let secret = hex::encode(rand::random::<[u8; 24]>());
        (Self(vec![Token { name: "admin".into(), role: Role::Admin, secret: secret.clone() }]), secret)
    }

    /// These tokens and `other`'s.
    pub fn joined(mut self, other: Tokens) -> Tokens {
        self.0.extend(other.0);
        self
    }

    /// Whether none are configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The caller `presented` identifies, comparing it with every token in constant time (so
    /// neither which token nor how much of it matched shows in the time taken).
    pub fn caller(&self, presented: &str) -> Option<Caller> {
        let mut found = None;
        for token in &self.0 {
            if bool::from(token.secret.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(Caller { name: token.name.clone(), role: token.role });
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_a_list_and_a_file_name_their_callers() {
        let tokens = Tokens::parse_list("ana:operator:0123456789abcdef0, bo:viewer:fedcba98765432100").unwrap();
        assert_eq!(tokens.caller("0123456789abcdef0"), Some(Caller { name: "ana".into(), role: Role::Operator }));
        assert_eq!(tokens.caller("fedcba98765432100").map(|c| c.role), Some(Role::Viewer));
        assert_eq!(tokens.caller("0123456789abcdef"), None, "a prefix is not the token");
        assert_eq!(tokens.caller(""), None);
        let file = Tokens::from_toml("[[token]]\nname = \"ops\"\nrole = \"admin\"\nsecret = \"a-long-enough-secret\"\n").unwrap();
        assert_eq!(file.caller("a-long-enough-secret").map(|c| c.name), Some("ops".into()));
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong() {
        let error = |list: &str| Tokens::parse_list(list).unwrap_err().to_string();
        assert!(error("ana:operator").contains("item 1 is not name:role:secret"));
        assert!(error("ana:root:0123456789abcdef0").contains("unknown role `root`"));
        assert!(error("ana:viewer:short").contains("shorter than 16"));
        assert!(Tokens::from_toml("[[token]]\nname = \"x\"\n").unwrap_err().to_string().contains("missing field"));
        assert!(!format!("{:?}", Tokens::parse_list("ana:viewer:0123456789abcdef0").unwrap()).contains("0123456789abcdef0"), "secrets stay out of logs");
    }
}
