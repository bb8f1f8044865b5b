use sea_orm::entity::prelude::*;

/// A key pair for access tokens (`JWT_ALGORITHM` `EdDSA` or `ES256`). It is
/// published from `created_at`, signs from `signs_from` until the next key
/// does, and stays published until the last token it signed has expired.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// The RFC 7638 thumbprint of the public key, as tokens name it in `kid`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub algorithm: String,
    /// The public key as a JWK (JSON), exactly as published.
    pub public_jwk: String,
    /// The private key (PKCS#8 DER) sealed with `DATA_ENCRYPTION_KEY`.
    pub private_key_enc: String,
    pub created_at: DateTimeUtc,
    pub signs_from: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
