//! Customer session tokens: short-lived bearer tokens for browsers, stored as digests.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use frontdesk_domain::{CustomerId, PartnerId, SecretHash, Timestamp};
use time::Duration;

use crate::customers::ensure_customer;
use crate::error::StoreError;
use crate::pool::with_conn;
use crate::rows::{now, NewSessionRow};
use crate::schema::customer_sessions;
use crate::Store;

/// Who a valid customer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSession {
    pub partner: PartnerId,
    pub customer: CustomerId,
    pub expires_at: Timestamp,
}

impl Store {
    /// Records a token (by digest) for `customer`, creating the customer if new.
    pub async fn create_customer_session(
        &self,
        partner: PartnerId,
        customer: &CustomerId,
        token: &SecretHash,
        lifetime: Duration,
    ) -> Result<CustomerSession, StoreError> {
        let created = now();
        let expires_at = Timestamp::new(created.as_offset() + lifetime);
        let row = NewSessionRow {
            token_hash: token.as_str(),
            partner_id: partner.0,
            customer_id: customer.as_str(),
            created_at: created.as_utc(),
            expires_at: expires_at.as_utc(),
        };
        let (_turn, mut db) = self.pool.write().await?;
        with_conn!(db, |conn| {
            conn.transaction::<_, StoreError, _>(async move |conn| {
                {
                    ensure_customer!(conn, partner.0, customer.as_str(), row.created_at)?;
                    // Expired tokens are swept here rather than by a background job.
                    diesel::delete(
                        customer_sessions::table
                            .filter(customer_sessions::expires_at.lt(row.created_at)),
                    )
                    .execute(conn)
                    .await?;
                    diesel::insert_into(customer_sessions::table)
                        .values(&row)
                        .execute(conn)
                        .await?;
                    Ok(())
                }
            })
            .await?
        });
        Ok(CustomerSession {
            partner,
            customer: customer.clone(),
            expires_at,
        })
    }

    /// The session a presented token belongs to, if it exists and has not expired.
    pub async fn customer_session(
        &self,
        token: &SecretHash,
    ) -> Result<Option<CustomerSession>, StoreError> {
        let at = now().as_utc();
        let mut db = self.pool.get().await?;
        let found: Option<(i64, String, time::PrimitiveDateTime)> = with_conn!(db, |conn| {
            customer_sessions::table
                .filter(customer_sessions::token_hash.eq(token.as_str()))
                .filter(customer_sessions::expires_at.gt(at))
                .select((
                    customer_sessions::partner_id,
                    customer_sessions::customer_id,
                    customer_sessions::expires_at,
                ))
                .first(conn)
                .await
                .optional()?
        });
        Ok(
            found.map(|(partner, customer, expires_at)| CustomerSession {
                partner: PartnerId(partner),
                customer: CustomerId::from_stored(customer),
                expires_at: Timestamp::from_utc(expires_at),
            }),
        )
    }
}
