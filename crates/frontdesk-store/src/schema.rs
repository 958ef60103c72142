//! One diesel schema for both backends: only portable types (BigInt, Text, Bool, Date,
//! Timestamp); JSON is kept as Text.

diesel::table! {
    partners (id) {
        id -> BigInt,
        name -> Text,
        domain -> Text,
        api_key_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    customers (partner_id, id) {
        partner_id -> BigInt,
        id -> Text,
        email -> Nullable<Text>,
        name -> Nullable<Text>,
        birthdate -> Nullable<Date>,
        flashback -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    agents (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        is_admin -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    conversations (id) {
        id -> BigInt,
        partner_id -> BigInt,
        customer_id -> Text,
        agent_id -> Nullable<BigInt>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        bot_replies -> BigInt,
        bot_tokens -> BigInt,
        bot_failures -> BigInt,
        handoff_reason -> Nullable<Text>,
        handoff_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    reply_jobs (conversation_id) {
        conversation_id -> BigInt,
        trigger_id -> BigInt,
        owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        attempts -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        conversation_id -> BigInt,
        sender_id -> Text,
        content -> Text,
        is_from_agent -> Bool,
        created_at -> Timestamp,
        read_status -> Bool,
        metadata -> Nullable<Text>,
        client_message_id -> Nullable<Text>,
        append_key -> Nullable<Text>,
    }
}

diesel::table! {
    customer_sessions (token_hash) {
        token_hash -> Text,
        partner_id -> BigInt,
        customer_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        kind -> Text,
        partner_id -> BigInt,
        customer_id -> Text,
        conversation_id -> Nullable<BigInt>,
        agent_id -> Nullable<BigInt>,
        all_agents -> Bool,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    agent_sessions (token_hash) {
        token_hash -> Text,
        agent_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    throttle_counters (key) {
        key -> Text,
        hits -> BigInt,
        resets_at -> Timestamp,
    }
}

diesel::joinable!(messages -> conversations (conversation_id));
diesel::joinable!(reply_jobs -> conversations (conversation_id));
diesel::joinable!(agent_sessions -> agents (agent_id));
diesel::allow_tables_to_appear_in_same_query!(
    partners,
    customers,
    agents,
    conversations,
    messages,
    customer_sessions,
    events,
    agent_sessions,
    throttle_counters,
    reply_jobs,
);
