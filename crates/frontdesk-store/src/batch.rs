//! Writing many rows at once, per backend, inside the caller's transaction. PostgreSQL takes
//! one statement per step whatever the batch size (arrays through `unnest`, so the statement
//! text never changes and stays prepared): every statement is a round trip, and on a busy
//! server the round trips were most of a batch's time. Through the async SQLite wrapper every
//! statement is a hop to a blocking thread, and diesel's multi-row insert exists only for the
//! synchronous connection, so SQLite runs each step in one blocking call on the connection.

use std::future::Future;

use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamp};
use diesel::{ExpressionMethods, QueryDsl, QueryResult, SelectableHelper};
use diesel_async::AsyncPgConnection;
use time::PrimitiveDateTime;

use crate::events::NewEventRow;
use crate::pool::SqliteConn;
use crate::rows::{ConversationRow, MessageRow, NewMessageRow};
use crate::schema::conversations;

pub(crate) trait BatchWrites {
    /// Locks the conversations (until commit) and returns them as locked, in id order. The
    /// order is the same for every writer, so two instances' batches cannot deadlock.
    fn lock_conversations(
        &mut self,
        ids: Vec<i64>,
    ) -> impl Future<Output = QueryResult<Vec<ConversationRow>>> + Send;

    /// Inserts messages, skipping any whose `(conversation, clientMessageId)` is taken, and sets
    /// `updated_at` of each conversation that got one to `at`; returns for each input its stored
    /// row, or `None` when it was skipped. Ids follow the input order.
    fn insert_messages(
        &mut self,
        rows: Vec<NewMessageRow>,
        at: PrimitiveDateTime,
    ) -> impl Future<Output = QueryResult<Vec<Option<MessageRow>>>> + Send;

    fn insert_events(
        &mut self,
        rows: Vec<NewEventRow>,
    ) -> impl Future<Output = QueryResult<()>> + Send;
}

/// One statement: the messages in input order (ids are drawn in that order), and the touch of
/// their conversations, which sees only the rows really inserted.
const PG_INSERT_MESSAGES: &str = "\
WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::text[])
        WITH ORDINALITY AS t (conversation_id, sender_id, content, is_from_agent, metadata,
                              client_message_id, position)
), inserted AS (
    INSERT INTO messages (conversation_id, sender_id, content, is_from_agent, created_at,
                          read_status, metadata, client_message_id)
    SELECT conversation_id, sender_id, content, is_from_agent, $7, FALSE, metadata,
           client_message_id
    FROM input ORDER BY position
    ON CONFLICT (conversation_id, client_message_id) DO NOTHING
    RETURNING *
), touched AS (
    UPDATE conversations SET updated_at = $7
    WHERE id IN (SELECT conversation_id FROM inserted)
)
SELECT * FROM inserted ORDER BY id";

/// One statement for any number of events; the table's triggers take the event-log lock
/// before the ids are drawn and queue the NOTIFY.
const PG_INSERT_EVENTS: &str = "\
INSERT INTO events (kind, partner_id, customer_id, conversation_id, agent_id, all_agents,
                    payload, created_at)
SELECT kind, partner_id, customer_id, conversation_id, agent_id, all_agents, payload, created_at
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::boolean[],
            $7::text[], $8::timestamp[])
    WITH ORDINALITY AS t (kind, partner_id, customer_id, conversation_id, agent_id, all_agents,
                          payload, created_at, position)
ORDER BY position";

impl BatchWrites for AsyncPgConnection {
    async fn lock_conversations(&mut self, ids: Vec<i64>) -> QueryResult<Vec<ConversationRow>> {
        use diesel_async::RunQueryDsl;
        conversations::table
            .filter(conversations::id.eq_any(ids))
            .order(conversations::id.asc())
            .for_update()
            .select(ConversationRow::as_select())
            .load(self)
            .await
    }

    async fn insert_messages(
        &mut self,
        rows: Vec<NewMessageRow>,
        at: PrimitiveDateTime,
    ) -> QueryResult<Vec<Option<MessageRow>>> {
        use diesel_async::RunQueryDsl;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let column = |f: fn(&NewMessageRow) -> String| rows.iter().map(f).collect::<Vec<_>>();
        let stored: Vec<MessageRow> = diesel::sql_query(PG_INSERT_MESSAGES)
            .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.conversation_id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(column(|r| r.sender_id.clone()))
            .bind::<Array<Text>, _>(column(|r| r.content.clone()))
            .bind::<Array<Bool>, _>(rows.iter().map(|r| r.is_from_agent).collect::<Vec<_>>())
            .bind::<Array<Nullable<Text>>, _>(
                rows.iter().map(|r| r.metadata.clone()).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<Text>>, _>(
                rows.iter()
                    .map(|r| r.client_message_id.clone())
                    .collect::<Vec<_>>(),
            )
            .bind::<Timestamp, _>(at)
            .load(self)
            .await?;
        Ok(match_inserted(&rows, stored))
    }

    async fn insert_events(&mut self, rows: Vec<NewEventRow>) -> QueryResult<()> {
        use diesel_async::RunQueryDsl;
        if rows.is_empty() {
            return Ok(());
        }
        diesel::sql_query(PG_INSERT_EVENTS)
            .bind::<Array<Text>, _>(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
            .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.partner_id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(
                rows.iter()
                    .map(|r| r.customer_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<BigInt>>, _>(
                rows.iter().map(|r| r.conversation_id).collect::<Vec<_>>(),
            )
            .bind::<Array<Nullable<BigInt>>, _>(rows.iter().map(|r| r.agent_id).collect::<Vec<_>>())
            .bind::<Array<Bool>, _>(rows.iter().map(|r| r.all_agents).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(rows.iter().map(|r| r.payload.as_str()).collect::<Vec<_>>())
            .bind::<Array<Timestamp>, _>(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
            .execute(self)
            .await
            .map(drop)
    }
}

impl BatchWrites for SqliteConn {
    async fn lock_conversations(&mut self, ids: Vec<i64>) -> QueryResult<Vec<ConversationRow>> {
        self.spawn_blocking(move |conn| sqlite::lock_conversations(conn, ids))
            .await
    }

    async fn insert_messages(
        &mut self,
        rows: Vec<NewMessageRow>,
        at: PrimitiveDateTime,
    ) -> QueryResult<Vec<Option<MessageRow>>> {
        self.spawn_blocking(move |conn| sqlite::insert_messages(conn, rows, at))
            .await
    }

    async fn insert_events(&mut self, rows: Vec<NewEventRow>) -> QueryResult<()> {
        self.spawn_blocking(move |conn| sqlite::insert_events(conn, rows))
            .await
    }
}

/// The same steps on the synchronous SQLite connection, for callers that already run on its
/// blocking thread (a whole message batch goes there in one hop).
pub(crate) mod sqlite {
    use diesel::{
        ExpressionMethods, OptionalExtension, QueryDsl, QueryResult, RunQueryDsl, SelectableHelper,
        SqliteConnection,
    };
    use time::PrimitiveDateTime;

    use crate::events::NewEventRow;
    use crate::rows::{ConversationRow, MessageRow, NewMessageRow};
    use crate::schema::{conversations, events, messages};

    /// SQLite has no row locks: a write takes the database's write lock, which a transaction
    /// that has only read cannot always upgrade to (SQLITE_BUSY, not retried). So this writes
    /// first: an UPDATE that changes nothing visible takes the lock and returns the rows.
    pub(crate) fn lock_conversations(
        conn: &mut SqliteConnection,
        ids: Vec<i64>,
    ) -> QueryResult<Vec<ConversationRow>> {
        let mut locked: Vec<ConversationRow> =
            diesel::update(conversations::table.filter(conversations::id.eq_any(ids)))
                .set(conversations::updated_at.eq(conversations::updated_at))
                .returning(ConversationRow::as_returning())
                .get_results(conn)?;
        locked.sort_by_key(|row| row.id);
        Ok(locked)
    }

    pub(crate) fn insert_messages(
        conn: &mut SqliteConnection,
        rows: Vec<NewMessageRow>,
        at: PrimitiveDateTime,
    ) -> QueryResult<Vec<Option<MessageRow>>> {
        let stored = rows
            .into_iter()
            .map(|row| {
                diesel::insert_into(messages::table)
                    .values(row)
                    .on_conflict((messages::conversation_id, messages::client_message_id))
                    .do_nothing()
                    .returning(MessageRow::as_returning())
                    .get_result(conn)
                    .optional()
            })
            .collect::<QueryResult<Vec<Option<MessageRow>>>>()?;
        let mut touched: Vec<i64> = stored.iter().flatten().map(|m| m.conversation_id).collect();
        touched.sort_unstable();
        touched.dedup();
        if !touched.is_empty() {
            diesel::update(conversations::table.filter(conversations::id.eq_any(touched)))
                .set(conversations::updated_at.eq(at))
                .execute(conn)?;
        }
        Ok(stored)
    }

    pub(crate) fn insert_events(
        conn: &mut SqliteConnection,
        rows: Vec<NewEventRow>,
    ) -> QueryResult<()> {
        for row in rows {
            diesel::insert_into(events::table)
                .values(row)
                .execute(conn)?;
        }
        Ok(())
    }
}

/// Pairs each input with the row stored for it. Rows with a `clientMessageId` are matched by
/// it; the others (which cannot conflict, so all were stored) by order, as PostgreSQL returns
/// the rows of one multi-row INSERT in the order of its VALUES.
fn match_inserted(rows: &[NewMessageRow], stored: Vec<MessageRow>) -> Vec<Option<MessageRow>> {
    let mut by_client_id = std::collections::HashMap::new();
    let mut anonymous = std::collections::VecDeque::new();
    for row in stored {
        match row.client_message_id.clone() {
            Some(id) => {
                by_client_id.insert((row.conversation_id, id), row);
            }
            None => anonymous.push_back(row),
        }
    }
    rows.iter()
        .map(|row| match &row.client_message_id {
            Some(id) => by_client_id.remove(&(row.conversation_id, id.clone())),
            None => anonymous.pop_front(),
        })
        .collect()
}
