//! Customers, scoped to their partner; created on first mention.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use frontdesk_domain::customer::CustomerChanges;
use frontdesk_domain::event::FlashbackNotice;
use frontdesk_domain::{Audience, Customer, CustomerId, Event, PartnerId, Patch};
use time::{Date, PrimitiveDateTime};

use crate::error::{Entity, StoreError};
use crate::events::NewEventRow;
use crate::pool::with_conn;
use crate::rows::{now, CustomerRow};
use crate::schema::customers;
use crate::write::{write_with_events, Emitted};
use crate::Store;

#[derive(Insertable)]
#[diesel(table_name = customers)]
struct NewCustomerRow<'a> {
    partner_id: i64,
    id: &'a str,
    email: Option<&'a str>,
    name: Option<&'a str>,
    birthdate: Option<Date>,
    flashback: Option<String>,
    created_at: PrimitiveDateTime,
    updated_at: PrimitiveDateTime,
}

/// Only the fields a PATCH names are written; `Some(None)` clears one.
#[derive(AsChangeset)]
#[diesel(table_name = customers)]
struct CustomerChangeset {
    email: Option<Option<String>>,
    name: Option<Option<String>>,
    birthdate: Option<Option<Date>>,
    flashback: Option<Option<String>>,
    updated_at: PrimitiveDateTime,
}

impl Store {
    /// Creates the customer with `changes`, or applies them to the existing one, in one
    /// statement (`INSERT … ON CONFLICT DO UPDATE`), so concurrent PATCHes never lose a field.
    pub async fn upsert_customer(
        &self,
        partner: PartnerId,
        id: &CustomerId,
        changes: CustomerChanges,
    ) -> Result<Customer, StoreError> {
        let at = now().as_utc();
        let new_profile = matches!(changes.flashback, Patch::Set(_));
        let flashback = changes
            .flashback
            .map(|profile| serde_json::to_string(&profile).unwrap_or_default())
            .into_change();
        let changeset = CustomerChangeset {
            email: changes.email.into_change(),
            name: changes.name.into_change(),
            birthdate: changes.birthdate.into_change(),
            flashback,
            updated_at: at,
        };
        let insert = NewCustomerRow {
            partner_id: partner.0,
            id: id.as_str(),
            email: changeset.email.as_ref().and_then(|v| v.as_deref()),
            name: changeset.name.as_ref().and_then(|v| v.as_deref()),
            birthdate: changeset.birthdate.flatten(),
            flashback: changeset.flashback.clone().flatten(),
            created_at: at,
            updated_at: at,
        };
        // The body moves what it uses: references, since `insert` borrows from `changeset`.
        let (insert, changeset) = (&insert, &changeset);
        write_with_events!(self, |conn| {
            let customer: Customer = diesel::insert_into(customers::table)
                .values(insert)
                .on_conflict((customers::partner_id, customers::id))
                .do_update()
                .set(changeset)
                .returning(CustomerRow::as_returning())
                .get_result(conn)
                .await?
                .try_into()?;
            // A new profile is news to the customer's connections and to agents.
            let Some(profile) = customer.flashback.clone().filter(|_| new_profile) else {
                return Ok(Emitted::nothing(customer));
            };
            let event = NewEventRow::new(
                &Event::Flashback(FlashbackNotice {
                    customer_id: customer.id.clone(),
                    flash_back: profile,
                }),
                &Audience::customer(partner, customer.id.clone()),
                None,
                at,
            );
            Ok(Emitted::one(customer, event))
        })
    }

    pub async fn customer(
        &self,
        partner: PartnerId,
        id: &CustomerId,
    ) -> Result<Customer, StoreError> {
        let mut db = self.pool.get().await?;
        let row: Option<CustomerRow> = with_conn!(db, |conn| {
            customers::table
                .find((partner.0, id.as_str()))
                .select(CustomerRow::as_select())
                .first(conn)
                .await
                .optional()?
        });
        row.ok_or(StoreError::NotFound(Entity::Customer))?
            .try_into()
    }
}

/// Makes sure the customer row exists (conversations and sessions refer to it).
macro_rules! ensure_customer {
    ($conn:expr, $partner:expr, $id:expr, $at:expr) => {
        ::diesel::insert_into($crate::schema::customers::table)
            .values((
                $crate::schema::customers::partner_id.eq($partner),
                $crate::schema::customers::id.eq($id),
                $crate::schema::customers::created_at.eq($at),
                $crate::schema::customers::updated_at.eq($at),
            ))
            .on_conflict_do_nothing()
            .execute($conn)
            .await
    };
}
pub(crate) use ensure_customer;
