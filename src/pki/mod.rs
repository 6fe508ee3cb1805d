//! Certificate issuance where the signing key lives on a token.
