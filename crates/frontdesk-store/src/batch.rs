//! Writing many rows at once, per backend. PostgreSQL takes one multi-row statement (one round
//! trip). Through the async SQLite wrapper every statement is a hop to a blocking thread, and
//! diesel's multi-row insert exists only for the synchronous connection, so SQLite runs the
//! whole set in one blocking call on the connection itself, inside the caller's transaction.

use std::future::Future;

use diesel::{OptionalExtension, QueryResult, SelectableHelper};
use diesel_async::AsyncPgConnection;

use crate::events::NewEventRow;
use crate::pool::SqliteConn;
use crate::rows::{MessageRow, NewMessageRow};
use crate::schema::{events, messages};

pub(crate) trait BatchWrites {
    /// Inserts messages, skipping any whose `(conversation, clientMessageId)` is taken; returns
    /// for each input its stored row, or `None` when it was skipped.
    fn insert_messages(
        &mut self,
        rows: Vec<NewMessageRow>,
    ) -> impl Future<Output = QueryResult<Vec<Option<MessageRow>>>> + Send;

    fn insert_events(
        &mut self,
        rows: Vec<NewEventRow>,
    ) -> impl Future<Output = QueryResult<()>> + Send;
}

impl BatchWrites for AsyncPgConnection {
    async fn insert_messages(
        &mut self,
        rows: Vec<NewMessageRow>,
    ) -> QueryResult<Vec<Option<MessageRow>>> {
        use diesel_async::RunQueryDsl;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let stored: Vec<MessageRow> = diesel::insert_into(messages::table)
            .values(rows.clone())
            .on_conflict((messages::conversation_id, messages::client_message_id))
            .do_nothing()
            .returning(MessageRow::as_returning())
            .get_results(self)
            .await?;
        Ok(match_inserted(&rows, stored))
    }

    async fn insert_events(&mut self, rows: Vec<NewEventRow>) -> QueryResult<()> {
        use diesel_async::RunQueryDsl;
        diesel::insert_into(events::table)
            .values(rows)
            .execute(self)
            .await
            .map(drop)
    }
}

impl BatchWrites for SqliteConn {
    async fn insert_messages(
        &mut self,
        rows: Vec<NewMessageRow>,
    ) -> QueryResult<Vec<Option<MessageRow>>> {
        self.spawn_blocking(move |conn| {
            use diesel::RunQueryDsl;
            rows.into_iter()
                .map(|row| {
                    diesel::insert_into(messages::table)
                        .values(row)
                        .on_conflict((messages::conversation_id, messages::client_message_id))
                        .do_nothing()
                        .returning(MessageRow::as_returning())
                        .get_result(conn)
                        .optional()
                })
                .collect()
        })
        .await
    }

    async fn insert_events(&mut self, rows: Vec<NewEventRow>) -> QueryResult<()> {
        self.spawn_blocking(move |conn| {
            use diesel::RunQueryDsl;
            for row in rows {
                diesel::insert_into(events::table)
                    .values(row)
                    .execute(conn)?;
            }
            Ok(())
        })
        .await
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
