//! Writing many rows at once, per backend, inside the caller's transaction: the steps of a
//! message batch and the event appends of every write (module `pg`, module `sqlite`). PostgreSQL takes one statement per step whatever the batch
//! size (arrays through `unnest`, so the text never changes and is prepared once per
//! connection): every statement is a round trip, and on a busy server the round trips were
//! most of a batch's time. SQLite's steps are plain synchronous functions, so a whole batch
//! runs in one hop to the connection's blocking thread.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamp, Untyped};
use diesel::QueryResult;
use time::PrimitiveDateTime;

use crate::rows::{MessageRow, NewMessageRow};

/// One statement: the messages in input order (ids are drawn in that order), and the touch of
/// their conversations, which sees only the rows really inserted. A message whose
/// `(conversation, clientMessageId)` or append key is taken is skipped.
const PG_INSERT_MESSAGES: &str = "\
WITH input AS (
    SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::boolean[], ?::text[], ?::text[],
                         ?::text[])
        WITH ORDINALITY AS t (conversation_id, sender_id, content, is_from_agent, metadata,
                              client_message_id, append_key, position)
), inserted AS (
    INSERT INTO messages (conversation_id, sender_id, content, is_from_agent, created_at,
                          read_status, metadata, client_message_id, append_key)
    SELECT conversation_id, sender_id, content, is_from_agent, ?, FALSE, metadata,
           client_message_id, append_key
    FROM input ORDER BY position
    ON CONFLICT DO NOTHING
    RETURNING *
), touched AS (
    UPDATE conversations SET updated_at = ?
    WHERE id IN (SELECT conversation_id FROM inserted)
)
SELECT * FROM inserted ORDER BY id";

/// One statement for any number of events; the table's triggers take the event-log lock
/// before the ids are drawn and queue the NOTIFY.
const PG_INSERT_EVENTS: &str = "\
INSERT INTO events (kind, partner_id, customer_id, conversation_id, agent_id, all_agents,
                    payload, created_at)
SELECT kind, partner_id, customer_id, conversation_id, agent_id, all_agents, payload, created_at
FROM unnest(?::text[], ?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::boolean[],
            ?::text[], ?::timestamp[])
    WITH ORDINALITY AS t (kind, partner_id, customer_id, conversation_id, agent_id, all_agents,
                          payload, created_at, position)
ORDER BY position";

/// One statement for the reply jobs a batch calls for (see replies.rs): a new job, claimed by
/// this instance, or a burst raising the trigger of the pending one (its holder stays); none
/// once the conversation was handed off.
const PG_UPSERT_REPLY_JOBS: &str = "\
INSERT INTO reply_jobs (conversation_id, trigger_id, owner, lease_until, attempts, created_at)
SELECT t.conversation_id, t.trigger_id, ?, ?, 1, ?
FROM unnest(?::bigint[], ?::bigint[]) AS t (conversation_id, trigger_id)
JOIN conversations c ON c.id = t.conversation_id
WHERE c.handoff_at IS NULL
ON CONFLICT (conversation_id)
    DO UPDATE SET trigger_id = GREATEST(reply_jobs.trigger_id, excluded.trigger_id)";

/// Deletes the jobs that automated replies in the batch finished, unless a newer customer
/// message moved their trigger.
const PG_FINISH_REPLY_JOBS: &str = "\
DELETE FROM reply_jobs r
USING unnest(?::bigint[], ?::bigint[]) AS t (conversation_id, trigger_id)
WHERE r.conversation_id = t.conversation_id AND r.trigger_id = t.trigger_id";

/// Counts each stored automated reply and its tokens on its conversation.
const PG_COUNT_REPLIES: &str = "\
UPDATE conversations c
SET bot_replies = c.bot_replies + 1, bot_tokens = c.bot_tokens + t.tokens, bot_failures = 0
FROM unnest(?::bigint[], ?::bigint[]) AS t (id, tokens)
WHERE c.id = t.id";

/// The same for one conversation on SQLite.
const SQLITE_UPSERT_REPLY_JOB: &str = "\
INSERT INTO reply_jobs (conversation_id, trigger_id, owner, lease_until, attempts, created_at)
SELECT id, ?, ?, ?, 1, ? FROM conversations WHERE id = ? AND handoff_at IS NULL
ON CONFLICT (conversation_id)
    DO UPDATE SET trigger_id = max(reply_jobs.trigger_id, excluded.trigger_id)";

/// The batch steps on PostgreSQL: one statement each, whatever the batch size.
pub(crate) mod pg {
    use diesel::{
        ExpressionMethods, NullableExpressionMethods, QueryDsl, QueryResult, SelectableHelper,
    };
    use diesel_async::{AsyncPgConnection, RunQueryDsl};
    use time::PrimitiveDateTime;

    use std::collections::HashMap;

    use super::{
        match_inserted, PgCountReplies, PgFinishReplyJobs, PgInsertEvents, PgInsertMessages,
        PgUpsertReplyJobs,
    };
    use crate::events::NewEventRow;
    use crate::group_commit::{JobState, Replies};
    use crate::rows::{ConversationRow, MessageRow, NewMessageRow};
    use crate::schema::{conversations, reply_jobs};

    /// Locks the conversations (until commit) and returns them, in id order. The order is the
    /// same for every writer, so two instances' batches cannot deadlock.
    pub(crate) async fn lock_conversations(
        conn: &mut AsyncPgConnection,
        ids: Vec<i64>,
    ) -> QueryResult<Vec<ConversationRow>> {
        conversations::table
            .filter(conversations::id.eq_any(ids))
            .order(conversations::id.asc())
            .for_update()
            .select(ConversationRow::as_select())
            .load(conn)
            .await
    }

    /// Inserts messages, skipping any whose `(conversation, clientMessageId)` is taken, and
    /// sets `updated_at` of each conversation that got one to `at`; returns for each input its
    /// stored row, or `None` when it was skipped. Ids follow the input order.
    pub(crate) async fn insert_messages(
        conn: &mut AsyncPgConnection,
        rows: Vec<NewMessageRow>,
        at: PrimitiveDateTime,
    ) -> QueryResult<Vec<Option<MessageRow>>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let statement = PgInsertMessages {
            conversation_id: rows.iter().map(|r| r.conversation_id).collect(),
            sender_id: rows.iter().map(|r| r.sender_id.clone()).collect(),
            content: rows.iter().map(|r| r.content.clone()).collect(),
            is_from_agent: rows.iter().map(|r| r.is_from_agent).collect(),
            metadata: rows.iter().map(|r| r.metadata.clone()).collect(),
            client_message_id: rows.iter().map(|r| r.client_message_id.clone()).collect(),
            append_key: rows.iter().map(|r| r.append_key.clone()).collect(),
            created_at: at,
            updated_at: at,
        };
        let stored: Vec<MessageRow> = statement.load(conn).await?;
        Ok(match_inserted(&rows, stored))
    }

    pub(crate) async fn insert_events(
        conn: &mut AsyncPgConnection,
        rows: Vec<NewEventRow>,
    ) -> QueryResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let statement = PgInsertEvents {
            kind: rows.iter().map(|r| r.kind).collect(),
            partner_id: rows.iter().map(|r| r.partner_id).collect(),
            customer_id: rows.iter().map(|r| r.customer_id.clone()).collect(),
            conversation_id: rows.iter().map(|r| r.conversation_id).collect(),
            agent_id: rows.iter().map(|r| r.agent_id).collect(),
            all_agents: rows.iter().map(|r| r.all_agents).collect(),
            created_at: rows.iter().map(|r| r.created_at).collect(),
            payload: rows.into_iter().map(|r| r.payload).collect(),
        };
        statement.execute(conn).await.map(drop)
    }

    /// Each conversation's hand-off flag and reply job trigger (`None`: no job).
    pub(crate) async fn reply_state(
        conn: &mut AsyncPgConnection,
        ids: Vec<i64>,
    ) -> QueryResult<HashMap<i64, JobState>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(i64, bool, Option<i64>)> = conversations::table
            .left_join(reply_jobs::table)
            .filter(conversations::id.eq_any(ids))
            .select((
                conversations::id,
                conversations::handoff_at.is_not_null(),
                reply_jobs::trigger_id.nullable(),
            ))
            .load(conn)
            .await?;
        Ok(super::job_states(rows))
    }

    /// Deletes the jobs of the replies stored, if still at their trigger, and counts them.
    pub(crate) async fn finish_replies(
        conn: &mut AsyncPgConnection,
        finished: Vec<(i64, i64, i64)>,
    ) -> QueryResult<()> {
        if finished.is_empty() {
            return Ok(());
        }
        PgFinishReplyJobs {
            conversation_id: finished.iter().map(|f| f.0).collect(),
            trigger_id: finished.iter().map(|f| f.1).collect(),
        }
        .execute(conn)
        .await?;
        PgCountReplies {
            conversation_id: finished.iter().map(|f| f.0).collect(),
            tokens: finished.iter().map(|f| f.2).collect(),
        }
        .execute(conn)
        .await
        .map(drop)
    }

    /// `(conversation, trigger)` pairs, one per conversation.
    pub(crate) async fn upsert_reply_jobs(
        conn: &mut AsyncPgConnection,
        replies: &Replies,
        triggers: Vec<(i64, i64)>,
        at: PrimitiveDateTime,
    ) -> QueryResult<()> {
        let Replies::On { owner, lease } = replies else {
            return Ok(());
        };
        if triggers.is_empty() {
            return Ok(());
        }
        let statement = PgUpsertReplyJobs {
            owner: owner.to_string(),
            lease_until: at + *lease,
            created_at: at,
            conversation_id: triggers.iter().map(|t| t.0).collect(),
            trigger_id: triggers.iter().map(|t| t.1).collect(),
        };
        statement.execute(conn).await.map(drop)
    }
}

/// The two array-bound statements as query types of their own: `sql_query` is never kept
/// prepared (diesel-async would parse it again on every call, a round trip more), while a type
/// with a static query id is prepared once per connection.
macro_rules! array_statement {
    ($name:ident, $sql:expr, $( $field:ident: $rust:ty => $sql_type:ty ),+ $(,)?) => {
        struct $name {
            $( $field: $rust, )+
        }

        impl QueryId for $name {
            type QueryId = Self;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl Query for $name {
            type SqlType = Untyped;
        }

        impl QueryFragment<Pg> for $name {
            fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                // The text has one `?` per bind, in the order of the fields.
                let mut text = $sql.split('?');
                out.push_sql(text.next().unwrap_or_default());
                $(
                    out.push_bind_param::<$sql_type, _>(&self.$field)?;
                    out.push_sql(text.next().unwrap_or_default());
                )+
                Ok(())
            }
        }
    };
}

array_statement!(PgInsertMessages, PG_INSERT_MESSAGES,
    conversation_id: Vec<i64> => Array<BigInt>,
    sender_id: Vec<String> => Array<Text>,
    content: Vec<String> => Array<Text>,
    is_from_agent: Vec<bool> => Array<Bool>,
    metadata: Vec<Option<String>> => Array<Nullable<Text>>,
    client_message_id: Vec<Option<String>> => Array<Nullable<Text>>,
    append_key: Vec<Option<String>> => Array<Nullable<Text>>,
    created_at: PrimitiveDateTime => Timestamp,
    updated_at: PrimitiveDateTime => Timestamp,
);

array_statement!(PgUpsertReplyJobs, PG_UPSERT_REPLY_JOBS,
    owner: String => Text,
    lease_until: PrimitiveDateTime => Timestamp,
    created_at: PrimitiveDateTime => Timestamp,
    conversation_id: Vec<i64> => Array<BigInt>,
    trigger_id: Vec<i64> => Array<BigInt>,
);

array_statement!(PgFinishReplyJobs, PG_FINISH_REPLY_JOBS,
    conversation_id: Vec<i64> => Array<BigInt>,
    trigger_id: Vec<i64> => Array<BigInt>,
);

array_statement!(PgCountReplies, PG_COUNT_REPLIES,
    conversation_id: Vec<i64> => Array<BigInt>,
    tokens: Vec<i64> => Array<BigInt>,
);

array_statement!(PgInsertEvents, PG_INSERT_EVENTS,
    kind: Vec<&'static str> => Array<Text>,
    partner_id: Vec<i64> => Array<BigInt>,
    customer_id: Vec<String> => Array<Text>,
    conversation_id: Vec<Option<i64>> => Array<Nullable<BigInt>>,
    agent_id: Vec<Option<i64>> => Array<Nullable<BigInt>>,
    all_agents: Vec<bool> => Array<Bool>,
    payload: Vec<String> => Array<Text>,
    created_at: Vec<PrimitiveDateTime> => Array<Timestamp>,
);

/// The same steps on the synchronous SQLite connection, for callers that already run on its
/// blocking thread (a whole message batch goes there in one hop).
pub(crate) mod sqlite {
    use diesel::{
        ExpressionMethods, NullableExpressionMethods, OptionalExtension, QueryDsl, QueryResult,
        RunQueryDsl, SelectableHelper, SqliteConnection,
    };
    use time::PrimitiveDateTime;

    use std::collections::HashMap;

    use crate::events::NewEventRow;
    use crate::group_commit::{JobState, Replies};
    use crate::rows::{ConversationRow, MessageRow, NewMessageRow};
    use crate::schema::{conversations, events, messages, reply_jobs};

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
                    // A taken `(conversation, clientMessageId)` or append key.
                    .on_conflict_do_nothing()
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

    pub(crate) fn reply_state(
        conn: &mut SqliteConnection,
        ids: Vec<i64>,
    ) -> QueryResult<HashMap<i64, JobState>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(i64, bool, Option<i64>)> = conversations::table
            .left_join(reply_jobs::table)
            .filter(conversations::id.eq_any(ids))
            .select((
                conversations::id,
                conversations::handoff_at.is_not_null(),
                reply_jobs::trigger_id.nullable(),
            ))
            .load(conn)?;
        Ok(super::job_states(rows))
    }

    pub(crate) fn finish_replies(
        conn: &mut SqliteConnection,
        finished: Vec<(i64, i64, i64)>,
    ) -> QueryResult<()> {
        for (conversation, trigger, tokens) in finished {
            diesel::delete(
                reply_jobs::table
                    .filter(reply_jobs::conversation_id.eq(conversation))
                    .filter(reply_jobs::trigger_id.eq(trigger)),
            )
            .execute(conn)?;
            diesel::update(conversations::table.find(conversation))
                .set((
                    conversations::bot_replies.eq(conversations::bot_replies + 1),
                    conversations::bot_tokens.eq(conversations::bot_tokens + tokens),
                    conversations::bot_failures.eq(0),
                ))
                .execute(conn)?;
        }
        Ok(())
    }

    pub(crate) fn upsert_reply_jobs(
        conn: &mut SqliteConnection,
        replies: &Replies,
        triggers: Vec<(i64, i64)>,
        at: PrimitiveDateTime,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Text, Timestamp};
        let Replies::On { owner, lease } = replies else {
            return Ok(());
        };
        for (conversation, trigger) in triggers {
            diesel::sql_query(super::SQLITE_UPSERT_REPLY_JOB)
                .bind::<BigInt, _>(trigger)
                .bind::<Text, _>(owner.as_ref())
                .bind::<Timestamp, _>(at + *lease)
                .bind::<Timestamp, _>(at)
                .bind::<BigInt, _>(conversation)
                .execute(conn)?;
        }
        Ok(())
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

/// `(conversation, handed off, trigger)` rows as a map.
fn job_states(
    rows: Vec<(i64, bool, Option<i64>)>,
) -> std::collections::HashMap<i64, crate::group_commit::JobState> {
    rows.into_iter()
        .map(|(id, handed_off, trigger)| {
            (
                id,
                crate::group_commit::JobState {
                    handed_off,
                    trigger,
                },
            )
        })
        .collect()
}

/// Pairs each input with the row stored for it, by its `clientMessageId` or else its append
/// key (every row has one or the other); `None` for the inputs that were skipped.
fn match_inserted(rows: &[NewMessageRow], stored: Vec<MessageRow>) -> Vec<Option<MessageRow>> {
    let mut by_client_id = std::collections::HashMap::new();
    let mut by_append_key = std::collections::HashMap::new();
    for row in stored {
        match (row.client_message_id.clone(), row.append_key.clone()) {
            (Some(id), _) => {
                by_client_id.insert((row.conversation_id, id), row);
            }
            (None, Some(key)) => {
                by_append_key.insert(key, row);
            }
            (None, None) => {}
        }
    }
    rows.iter()
        .map(|row| match (&row.client_message_id, &row.append_key) {
            (Some(id), _) => by_client_id.remove(&(row.conversation_id, id.clone())),
            (None, Some(key)) => by_append_key.remove(key),
            (None, None) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message `content` in `conversation`, with a clientMessageId or else an append key.
    fn input(conversation: i64, content: &str, client_id: Option<&str>) -> NewMessageRow {
        NewMessageRow {
            conversation_id: conversation,
            sender_id: "ann".into(),
            content: content.into(),
            is_from_agent: false,
            created_at: crate::rows::now().as_utc(),
            read_status: false,
            metadata: None,
            client_message_id: client_id.map(str::to_owned),
            append_key: client_id.is_none().then(|| format!("key-{content}")),
        }
    }

    /// What each input was matched with: the stored content and id, or `-` for none.
    fn matched(rows: &[NewMessageRow], stored: Vec<MessageRow>) -> Vec<String> {
        match_inserted(rows, stored)
            .into_iter()
            .map(|m| m.map_or("-".to_owned(), |m| format!("{} #{}", m.content, m.id)))
            .collect()
    }

    #[test]
    fn each_input_gets_its_own_row_whatever_order_they_come_back_in() {
        let rows = [
            input(1, "a", Some("c1")),
            input(1, "b", None),
            // The same clientMessageId in another conversation is another message.
            input(2, "c", Some("c1")),
        ];
        let back = vec![
            NewMessageRow::stored_as(&rows[2], 12),
            NewMessageRow::stored_as(&rows[1], 11),
            NewMessageRow::stored_as(&rows[0], 10),
        ];
        assert_eq!(matched(&rows, back), ["a #10", "b #11", "c #12"]);
    }

    #[test]
    fn a_client_message_id_twice_in_one_batch_is_stored_for_the_first_only() {
        let rows = [
            input(1, "first", Some("c1")),
            input(1, "again", Some("c1")),
            input(1, "other", Some("c2")),
        ];
        // The insert skipped the second: its key was taken by the first.
        let back = vec![
            NewMessageRow::stored_as(&rows[0], 20),
            NewMessageRow::stored_as(&rows[2], 21),
        ];
        assert_eq!(matched(&rows, back), ["first #20", "-", "other #21"]);
    }

    #[test]
    fn inputs_the_insert_skipped_get_nothing() {
        let rows = [input(1, "a", Some("c1")), input(1, "b", None)];
        assert_eq!(matched(&rows, Vec::new()), ["-", "-"]);
        // Nor does a row stored for nobody in the batch land on an input.
        let stranger = NewMessageRow::stored_as(&input(1, "z", Some("c9")), 30);
        assert_eq!(matched(&rows, vec![stranger]), ["-", "-"]);
    }
}
