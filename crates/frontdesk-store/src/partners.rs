//! Partners and their API keys (stored as digests only).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use frontdesk_domain::{Partner, PartnerRegistration, SecretHash};

use crate::error::{Entity, StoreError};
use crate::pool::with_conn;
use crate::rows::{now, NewPartnerRow, PartnerRow};
use crate::schema::partners;
use crate::Store;

impl Store {
    pub async fn create_partner(
        &self,
        registration: &PartnerRegistration,
        api_key: &SecretHash,
    ) -> Result<Partner, StoreError> {
        let row = NewPartnerRow {
            name: &registration.name,
            domain: &registration.domain,
            api_key_hash: api_key.as_str(),
            created_at: now().as_utc(),
        };
        let (_turn, mut db) = self.pool.write().await?;
        let created: PartnerRow = with_conn!(db, |conn| {
            diesel::insert_into(partners::table)
                .values(&row)
                .returning(PartnerRow::as_returning())
                .get_result(conn)
                .await?
        });
        Ok(created.into())
    }

    /// The partner whose API key hashes to `api_key`, if any.
    pub async fn partner_by_key(
        &self,
        api_key: &SecretHash,
    ) -> Result<Option<Partner>, StoreError> {
        let mut db = self.pool.get().await?;
        let found: Option<PartnerRow> = with_conn!(db, |conn| {
            partners::table
                .filter(partners::api_key_hash.eq(api_key.as_str()))
                .select(PartnerRow::as_select())
                .first(conn)
                .await
                .optional()?
        });
        Ok(found.map(Partner::from))
    }

    pub async fn partner(&self, id: frontdesk_domain::PartnerId) -> Result<Partner, StoreError> {
        let mut db = self.pool.get().await?;
        let found: Option<PartnerRow> = with_conn!(db, |conn| {
            partners::table
                .find(id.0)
                .select(PartnerRow::as_select())
                .first(conn)
                .await
                .optional()?
        });
        found
            .map(Partner::from)
            .ok_or(StoreError::NotFound(Entity::Partner))
    }

    /// Every partner's registered domain, for the browser origins each may be called from.
    pub async fn partner_domains(
        &self,
    ) -> Result<Vec<(frontdesk_domain::PartnerId, String)>, StoreError> {
        let mut db = self.pool.get().await?;
        let rows: Vec<(i64, String)> = with_conn!(db, |conn| {
            partners::table
                .select((partners::id, partners::domain))
                .order(partners::id.asc())
                .load(conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, domain)| (frontdesk_domain::PartnerId(id), domain))
            .collect())
    }

    /// Replaces a partner's API key digest; returns the old one, which stops matching at once.
    pub async fn rotate_partner_key(
        &self,
        id: frontdesk_domain::PartnerId,
        api_key: &SecretHash,
    ) -> Result<SecretHash, StoreError> {
        let (_turn, mut db) = self.pool.write().await?;
        let old: Option<String> = with_conn!(db, |conn| {
            conn.transaction::<_, StoreError, _>(async move |conn| {
                let old: Option<String> = partners::table
                    .find(id.0)
                    .select(partners::api_key_hash)
                    .first(conn)
                    .await
                    .optional()?;
                if old.is_some() {
                    diesel::update(partners::table.find(id.0))
                        .set(partners::api_key_hash.eq(api_key.as_str()))
                        .execute(conn)
                        .await?;
                }
                Ok(old)
            })
            .await?
        });
        old.map(SecretHash::from_stored)
            .ok_or(StoreError::NotFound(Entity::Partner))
    }
}
