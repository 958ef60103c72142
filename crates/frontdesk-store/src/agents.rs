//! Agents and their session tokens (stored as digests, with an expiry).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use frontdesk_domain::{Agent, AgentId, AgentSignup, SecretHash, Timestamp};
use time::{Duration, PrimitiveDateTime};

use crate::error::StoreError;
use crate::pool::with_conn;
use crate::rows::now;
use crate::schema::{agent_sessions, agents};
use crate::Store;

#[derive(Queryable, Selectable)]
#[diesel(table_name = agents)]
struct AgentRow {
    id: i64,
    email: String,
    name: String,
    is_admin: bool,
    created_at: PrimitiveDateTime,
}

impl From<AgentRow> for Agent {
    fn from(row: AgentRow) -> Self {
        Agent {
            id: AgentId(row.id),
            name: row.name,
            email: row.email,
            is_admin: row.is_admin,
            created_at: Timestamp::from_utc(row.created_at),
        }
    }
}

impl Store {
    /// A new agent; an email already in use is `Duplicate`.
    pub async fn create_agent(&self, signup: &AgentSignup) -> Result<Agent, StoreError> {
        let at = now().as_utc();
        let (_turn, mut db) = self.pool.write().await?;
        let created: Result<AgentRow, StoreError> = with_conn!(db, |conn| {
            diesel::insert_into(agents::table)
                .values((
                    agents::email.eq(&signup.email),
                    agents::name.eq(&signup.name),
                    agents::password_hash.eq(&signup.password_hash),
                    agents::is_admin.eq(signup.is_admin),
                    agents::created_at.eq(at),
                ))
                .returning(AgentRow::as_returning())
                .get_result(conn)
                .await
                .map_err(StoreError::from)
        });
        match created {
            Ok(row) => Ok(row.into()),
            Err(error) if error.is_unique_violation() => Err(StoreError::Duplicate("email")),
            Err(error) => Err(error),
        }
    }

    /// The agent with this email and its password hash, for login.
    pub async fn agent_credentials(
        &self,
        email: &str,
    ) -> Result<Option<(Agent, String)>, StoreError> {
        let email = email.trim().to_lowercase();
        // No stored email holds a NUL (the domain refuses it), and PostgreSQL would refuse
        // the query with an error rather than find nothing.
        if !frontdesk_domain::text::is_storable(&email) {
            return Ok(None);
        }
        let mut db = self.pool.get().await?;
        let found: Option<(AgentRow, String)> = with_conn!(db, |conn| {
            agents::table
                .filter(agents::email.eq(&email))
                .select((AgentRow::as_select(), agents::password_hash))
                .first(conn)
                .await
                .optional()?
        });
        Ok(found.map(|(row, hash)| (row.into(), hash)))
    }

    /// Records a session token (by digest); returns when it expires. Expired sessions are swept.
    pub async fn create_agent_session(
        &self,
        agent: AgentId,
        token: &SecretHash,
        lifetime: Duration,
    ) -> Result<Timestamp, StoreError> {
        let created = now();
        let expires = Timestamp::new(created.as_offset() + lifetime);
        let (_turn, mut db) = self.pool.write().await?;
        with_conn!(db, |conn| {
            diesel::insert_into(agent_sessions::table)
                .values((
                    agent_sessions::token_hash.eq(token.as_str()),
                    agent_sessions::agent_id.eq(agent.0),
                    agent_sessions::created_at.eq(created.as_utc()),
                    agent_sessions::expires_at.eq(expires.as_utc()),
                ))
                .execute(conn)
                .await?;
            diesel::delete(
                agent_sessions::table.filter(agent_sessions::expires_at.lt(created.as_utc())),
            )
            .execute(conn)
            .await?;
        });
        Ok(expires)
    }

    /// The agent a live session token belongs to, and when the session expires.
    pub async fn agent_session(
        &self,
        token: &SecretHash,
    ) -> Result<Option<(Agent, Timestamp)>, StoreError> {
        let at = now().as_utc();
        let mut db = self.pool.get().await?;
        let found: Option<(AgentRow, PrimitiveDateTime)> = with_conn!(db, |conn| {
            agent_sessions::table
                .inner_join(agents::table)
                .filter(agent_sessions::token_hash.eq(token.as_str()))
                .filter(agent_sessions::expires_at.gt(at))
                .select((AgentRow::as_select(), agent_sessions::expires_at))
                .first(conn)
                .await
                .optional()?
        });
        Ok(found.map(|(row, expires)| (Agent::from(row), Timestamp::from_utc(expires))))
    }

    /// Ends a session (logout). Unknown tokens are fine: the outcome is the same.
    pub async fn end_agent_session(&self, token: &SecretHash) -> Result<(), StoreError> {
        let (_turn, mut db) = self.pool.write().await?;
        with_conn!(db, |conn| {
            diesel::delete(agent_sessions::table.find(token.as_str()))
                .execute(conn)
                .await?;
        });
        Ok(())
    }
}
