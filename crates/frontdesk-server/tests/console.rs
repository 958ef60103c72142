//! The agent console at `/console/` in real headless Chromium (Debian's `chromium`, driven
//! through `chromedriver`), against the real server on SQLite. The customer on the other end is
//! a real WebSocket client that checks what it receives.
//!
//! Screenshots go to `<target>/console-screenshots/`. With FRONTDESK_UPDATE_SCREENSHOT=1 the
//! chat screenshot is also copied to docs/console.png. FRONTDESK_TEST_BROWSER=skip skips the
//! browser test on a machine without Chromium.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use frontdesk_testkit::browser::{artefact_dir, Browser, ChromeDriver};
use frontdesk_testkit::fake_model::{last_user_text, stream_pieces, FakeModel, Step};
use frontdesk_testkit::relay::Relay;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{header, Backend, Partner, Server, TestDb, WsClient};

/// How long the console may take to show what the test expects.
const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);
/// The console retries with backoff, up to 15 s apart, so a reconnect may take longer.
const RECONNECT_WAIT: Duration = Duration::from_secs(30);

const CUSTOMER: &str = "ann-1042";
const CUSTOMER_NAME: &str = "Ann Smith";
const FIRST: &str = "Hello, I need help with my order";
const REPLY: &str = "Hi Ann, I'm checking order ORD-12345 for you now.";
const FOLLOW_UP: &str = "Thanks! It was supposed to arrive on Monday.";
const MISSED: &str = "Are you still there?";
const ONE_MORE: &str = "One more thing: can they leave it with a neighbour?";
const OTHER_CUSTOMER: &str = "bob-2077";
const OTHER_FIRST: &str = "Can I change the delivery address of my order?";
const OFFLINE_REPLY: &str = "Yes! The courier says it arrives tomorrow.";
/// `frontdesk agent create` in the support module sets this password.
const PASSWORD: &str = "a long enough password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_assets_are_embedded_with_strict_headers() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"));

    let redirect = get(&client, &server.url("/console")).await;
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(&redirect, "location"), "/console/");

    for (path, content_type, marker) in [
        ("/console/", "text/html; charset=utf-8", "<title>"),
        (
            "/console/console.js",
            "text/javascript; charset=utf-8",
            "'use strict'",
        ),
        ("/console/console.css", "text/css; charset=utf-8", ":root"),
    ] {
        let response = get(&client, &server.url(path)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "content-type"), content_type, "{path}");
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        let csp = header(&response, "content-security-policy");
        for directive in [
            "default-src 'self'",
            "connect-src 'self' ws: wss:",
            "img-src 'self' data:",
            "style-src 'self'",
            "script-src 'self'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing in {csp}"
            );
        }
        let body = response.text().await.unwrap_or_default();
        assert!(body.contains(marker), "{path} is not the console's file");
        // Nothing may come from elsewhere: no CDN, no web fonts.
        for external in ["http://", "https://", "//cdn", "@import", "url("] {
            assert!(!body.contains(external), "{path} refers to {external}");
        }
    }
    server.assert_no_panics();
}

async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// The whole agent journey, as an agent sees it, with a live customer on the other side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_handles_a_conversation_in_the_browser() {
    let Some(browser) = Browser::locate("console") else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme Shop").await;
    let agent = server.agent("agent@example.com", false).await;
    server
        .patch_customer(
            &partner,
            CUSTOMER,
            &json!({"name": CUSTOMER_NAME, "email": "ann@example.com"}),
        )
        .await;

    // The browser reaches the server through a relay the test can cut, like a network drop.
    let relay = Relay::start(&server);
    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open(&driver, &browser).await;
    let shots = screenshot_dir();

    // Sign in through the form; /console redirects to /console/.
    page.goto(&format!("http://{}/console", relay.addr)).await;
    page.wait_visible("#signin-email").await;
    page.type_into("#signin-email", "agent@example.com").await;
    page.type_into("#signin-password", "wrong password").await;
    page.click("#signin-submit").await;
    page.wait_text("#signin-error", "wrong email or password")
        .await;
    page.clear("#signin-password").await;
    page.type_into("#signin-password", PASSWORD).await;
    page.click("#signin-submit").await;
    page.wait_visible("#workspace").await;
    page.wait_text("#me-name", "Test Agent").await;
    page.wait_attr("#connection", "data-state", "live").await;
    page.wait_visible("#queue-empty").await;
    // Survives only as long as the page is not reloaded.
    page.run("window.__noReload = 'still here'; return null;")
        .await;

    // The customer is online with a real WebSocket.
    let token = server.session(&partner, CUSTOMER).await;
    let mut customer = Customer {
        ws: WsClient::customer(&server, CUSTOMER, &token).await,
        frames: Vec::new(),
    };

    // A partner opens a conversation over REST: it shows up in the queue without a reload.
    let conversation = server.conversation(&partner, CUSTOMER).await;
    let first = server
        .post_message(
            &partner.key,
            &json!({
                "conversationId": conversation,
                "senderId": CUSTOMER,
                "content": FIRST,
                "metadata": {"commandType": "order_lookup", "value": "ORD-12345"}
            }),
        )
        .await;
    let item = format!("#queue-list .conv[data-id='{conversation}']");
    page.wait_text(&format!("{item} .conv-name"), CUSTOMER_NAME)
        .await;
    page.wait_text(&format!("{item} .conv-customer-id"), CUSTOMER)
        .await;
    page.wait_text(&format!("{item} .conv-partner"), "Acme Shop")
        .await;
    page.wait_text(&format!("{item} .conv-preview"), FIRST)
        .await;
    let waiting = page.text(&format!("{item} .conv-wait")).await;
    assert!(
        is_waiting_time(&waiting),
        "the queue shows no waiting time: {waiting:?}"
    );
    page.wait_text("#queue-count", "1").await;
    page.save_screenshot(&shots.join("queue.png")).await;

    // Open it: the customer's message with its metadata chip; take it.
    page.click(&item).await;
    let first_id = id_of(&first);
    let first_node = format!("#messages li[data-id='{first_id}']");
    page.wait_text(&format!("{first_node} .content"), FIRST)
        .await;
    page.wait_text(&format!("{first_node} .sender"), CUSTOMER_NAME)
        .await;
    page.wait_text(&format!("{first_node} .chip"), "order_lookup ORD-12345")
        .await;
    page.wait_visible("#take").await;
    page.click("#take").await;
    let mine = format!("#mine-list .conv[data-id='{conversation}']");
    page.wait_visible(&mine).await;
    page.wait_visible("#queue-empty").await;
    page.wait_visible("#composer-input").await;
    page.wait_text("#chat-subtitle .status-pill", "Active")
        .await;
    // Everything up to the take, bot replies included, is behind us once `active` arrives.
    customer
        .until("status active", |f| {
            f["type"] == "status" && f["payload"]["status"] == "active"
        })
        .await;

    // The agent types and presses Enter: the customer sees typing, then the message.
    page.type_into("#composer-input", REPLY).await;
    page.type_into("#composer-input", &Key::Enter).await;
    let (reply, before) = customer
        .until("the agent's reply", |f| {
            f["type"] == "message" && f["payload"]["content"] == REPLY
        })
        .await;
    let reply = &reply["payload"];
    assert_eq!(reply["isFromAgent"], true, "{reply}");
    assert_eq!(reply["senderId"], format!("agent-{}", agent.id), "{reply}");
    assert_eq!(reply["conversationId"], conversation, "{reply}");
    assert!(
        before.iter().any(|f| f["type"] == "typing"
            && f["payload"]["isTyping"] == true
            && f["payload"]["isAgent"] == true
            && f["payload"]["conversationId"] == conversation),
        "the customer saw no typing indicator before the reply: {before:?}"
    );
    let reply_id = id_of(reply);
    let reply_node = format!("#messages li[data-id='{reply_id}']");
    page.wait_text(&format!("{reply_node} .content"), REPLY)
        .await;
    page.wait_attr(&format!("{reply_node} .tick"), "data-state", "sent")
        .await;
    // Once stored, the reply shows once: its "sending" placeholder is gone.
    page.wait_count("#messages li.pending", 0).await;
    page.wait_count("#messages li.own", 1).await;
    assert_eq!(page.value("#composer-input").await, "");

    // The customer types: the console shows it live.
    customer
        .send(&json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}))
        .await;
    page.wait_text("#typing", &format!("{CUSTOMER_NAME} is typing…"))
        .await;

    // The customer writes: it appears live, and the console reports it read.
    customer
        .send(&json!({"type": "message", "payload": {
            "conversationId": conversation, "content": FOLLOW_UP, "clientMessageId": "ann-2"
        }}))
        .await;
    let (ack, _) = customer.until("the ack", |f| f["type"] == "ack").await;
    assert_eq!(ack["payload"]["clientMessageId"], "ann-2", "{ack}");
    let follow_up_id = id_of(&ack["payload"]["message"]);
    let follow_up_node = format!("#messages li[data-id='{follow_up_id}']");
    page.wait_text(&format!("{follow_up_node} .content"), FOLLOW_UP)
        .await;
    page.wait_hidden("#typing").await;
    let (read, _) = customer
        .until("the agent's read receipt", |f| {
            f["type"] == "read" && f["payload"]["messageId"] == follow_up_id
        })
        .await;
    assert_eq!(read["payload"]["isAgent"], true, "{read}");
    page.wait_text(&format!("{mine} .conv-preview"), FOLLOW_UP)
        .await;
    assert!(
        !page.exists(&format!("{mine} .badge")).await,
        "an open conversation has no unread badge"
    );

    // The customer reads the reply: its tick turns to "read".
    customer
        .send(&json!({"type": "read", "payload": {"conversationId": conversation, "messageId": reply_id}}))
        .await;
    page.wait_attr(&format!("{reply_node} .tick"), "data-state", "read")
        .await;
    page.wait_text(&format!("{reply_node} .tick"), "✓✓ Read")
        .await;

    // The network drops. The console says so, keeps what the agent sends meanwhile, reconnects
    // by itself and catches up: what the customer said during the outage shows once.
    relay.cut();
    page.wait_attr("#connection", "data-state", "reconnecting")
        .await;
    page.wait_text("#connection-text", "Reconnecting…").await;
    customer
        .send(&json!({"type": "message", "payload": {
            "conversationId": conversation, "content": MISSED, "clientMessageId": "ann-3"
        }}))
        .await;
    let (ack, _) = customer.until("the ack", |f| f["type"] == "ack").await;
    let missed_id = id_of(&ack["payload"]["message"]);
    page.type_into("#composer-input", OFFLINE_REPLY).await;
    page.type_into("#composer-input", &Key::Enter).await;
    page.wait_text("#messages li.pending .content", OFFLINE_REPLY)
        .await;
    assert!(
        !page
            .exists(&format!("#messages li[data-id='{missed_id}']"))
            .await,
        "the console cannot have heard anything while cut off"
    );
    relay.restore();
    page.wait_until_within(
        RECONNECT_WAIT,
        "#connection",
        "data-state",
        "be live again",
        |seen| seen["attr"] == "live",
    )
    .await;
    page.wait_text("#connection-text", "Live").await;
    page.wait_text(
        &format!("#messages li[data-id='{missed_id}'] .content"),
        MISSED,
    )
    .await;
    let (late, _) = customer
        .until("the reply sent while offline", |f| {
            f["type"] == "message" && f["payload"]["content"] == OFFLINE_REPLY
        })
        .await;
    let late_id = id_of(&late["payload"]);
    page.wait_text(
        &format!("#messages li[data-id='{late_id}'] .content"),
        OFFLINE_REPLY,
    )
    .await;
    page.wait_count("#messages li.pending", 0).await;
    page.wait_count("#messages li.own", 2).await;
    page.wait_count("#messages li.from-customer", 3).await;

    // The customer panel, then the Flashback profile once the partner sends a birthdate.
    page.wait_text("#customer-body .field-name", CUSTOMER_NAME)
        .await;
    page.wait_text("#customer-body .field-id", CUSTOMER).await;
    page.wait_text("#customer-body .field-email", "ann@example.com")
        .await;
    page.wait_text("#customer-body .field-partner", "Acme Shop (example.com)")
        .await;
    page.wait_visible("#customer-body .flashback-none").await;
    server
        .patch_customer(&partner, CUSTOMER, &json!({"birthdate": "1990-01-15"}))
        .await;
    let (status, detail) = server
        .call(
            Method::GET,
            &format!("/api/agent/conversations/{conversation}"),
            Some(&agent.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    let profile = &detail["customer"]["flashback"]["flashBack"];
    for (event, date, trait_) in [
        ("first", "firstEventDate", "firstEventTrait"),
        ("second", "secondEventDate", "secondEventTrait"),
    ] {
        let trait_text = profile[trait_]
            .as_str()
            .unwrap_or_else(|| panic!("no {trait_} in {detail}"));
        let date_text = format!(
            "{} {}",
            profile[date]["month"].as_str().unwrap_or_default(),
            profile[date]["year"]
        );
        let node = format!("#customer-body .flashback-event.{event}");
        page.wait_text(&format!("{node} .flashback-trait"), trait_text)
            .await;
        page.wait_text(&format!("{node} .flashback-date"), &date_text)
            .await;
    }
    page.wait_text("#customer-body .field-birthdate", "January 15, 1990")
        .await;

    // Another customer starts waiting while the agent is busy: the queue shows it live.
    server
        .patch_customer(&partner, OTHER_CUSTOMER, &json!({"name": "Bob Martin"}))
        .await;
    let other = server.conversation(&partner, OTHER_CUSTOMER).await;
    server
        .say(&partner, other, OTHER_CUSTOMER, OTHER_FIRST)
        .await;
    let other_item = format!("#queue-list .conv[data-id='{other}']");
    page.wait_text(&format!("{other_item} .conv-name"), "Bob Martin")
        .await;
    page.wait_text(&format!("{other_item} .conv-preview"), OTHER_FIRST)
        .await;
    page.wait_text(&format!("{other_item} .badge"), "1").await;
    page.wait_text("#queue-count", "1").await;

    // The documentation screenshots: the chat with the customer typing, and the panel.
    customer
        .send(&json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}))
        .await;
    page.wait_visible("#typing").await;
    page.save_screenshot(&shots.join("chat.png")).await;
    page.save_element_screenshot("#customer", &shots.join("customer.png"))
        .await;
    customer
        .send(&json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": false}}))
        .await;
    page.wait_hidden("#typing").await;

    // The agent looks at the new conversation; Ann writes meanwhile: an unread badge.
    page.click(&other_item).await;
    page.wait_text("#chat-title", "Bob Martin").await;
    page.wait_visible("#take").await;
    customer
        .send(&json!({"type": "message", "payload": {
            "conversationId": conversation, "content": ONE_MORE, "clientMessageId": "ann-4"
        }}))
        .await;
    let (ack, _) = customer.until("the ack", |f| f["type"] == "ack").await;
    let one_more_id = id_of(&ack["payload"]["message"]);
    page.wait_text(&format!("{mine} .conv-preview"), ONE_MORE)
        .await;
    page.wait_text(&format!("{mine} .badge"), "1").await;
    // The tab's title counts unread messages too.
    page.wait_script(
        "the unread count in the title",
        "return document.title;",
        Value::Null,
        json!("(1) Frontdesk agent console"),
    )
    .await;

    // Back to Ann by keyboard (Alt+Down: the next conversation): shown, read, badge gone.
    let alt_down = format!("{}{}{}", Key::Alt, Key::Down, Key::Null);
    page.type_into(&other_item, &alt_down).await;
    page.wait_text("#chat-title", CUSTOMER_NAME).await;
    page.wait_text(
        &format!("#messages li[data-id='{one_more_id}'] .content"),
        ONE_MORE,
    )
    .await;
    page.wait_count(&format!("{mine} .badge"), 0).await;
    let (read, _) = customer
        .until("the read receipt", |f| {
            f["type"] == "read" && f["payload"]["messageId"] == one_more_id
        })
        .await;
    assert_eq!(read["payload"]["isAgent"], true, "{read}");
    let focused = page
        .run("return document.activeElement.dataset.id || null;")
        .await;
    assert_eq!(
        focused,
        json!(conversation.to_string()),
        "focus follows the selection"
    );
    if std::env::var("FRONTDESK_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console.png");
        std::fs::copy(shots.join("chat.png"), &docs)
            .unwrap_or_else(|e| panic!("copy to {}: {e}", docs.display()));
    }

    // A phone: one pane at a time, with a way back.
    page.resize(390, 844).await;
    let width = page.run("return window.innerWidth;").await;
    assert!(
        width.as_i64().is_some_and(|w| w <= 700),
        "the window did not shrink to phone width: {width}"
    );
    page.wait_visible("#messages").await;
    page.wait_hidden(".list-pane").await;
    page.wait_hidden("#customer").await;
    page.save_screenshot(&shots.join("phone-chat.png")).await;
    page.click("#show-customer").await;
    page.wait_visible("#customer .flashback-events").await;
    page.wait_hidden("#chat").await;
    page.save_screenshot(&shots.join("phone-customer.png"))
        .await;
    page.click("#customer-back").await;
    page.click("#chat-back").await;
    page.wait_visible(&mine).await;
    page.wait_hidden("#chat").await;
    page.save_screenshot(&shots.join("phone-queue.png")).await;
    page.click(&mine).await;
    page.wait_visible("#close").await;

    // Close: confirm in the dialog; the customer hears it.
    page.resize(1280, 800).await;
    page.click("#close").await;
    page.wait_visible("#close-dialog").await;
    page.click("#close-confirm").await;
    customer
        .until("status closed", |f| {
            f["type"] == "status"
                && f["payload"]["status"] == "closed"
                && f["payload"]["conversationId"] == conversation
        })
        .await;
    // Retries (the offline queue, the REST fallback) never deliver a message twice.
    for content in [REPLY, OFFLINE_REPLY] {
        let copies = customer
            .frames
            .iter()
            .filter(|f| f["type"] == "message" && f["payload"]["content"] == content)
            .count();
        assert_eq!(copies, 1, "{content:?} reached the customer {copies} times");
    }
    page.wait_text("#chat-banner", "This conversation is closed.")
        .await;
    page.wait_hidden("#composer").await;
    page.wait_visible("#mine-empty").await;
    page.wait_text("#mine-count", "0").await;
    page.wait_text("#queue-count", "1").await;

    let marker = page.run("return window.__noReload || null;").await;
    assert_eq!(marker, json!("still here"), "the page was reloaded");
    page.quit().await;
    server.assert_no_panics();
}

const HTML_CONTENT: &str = "<img src=x onerror=\"window.__injected = 1\"><b>bold</b>";
const HTML_NAME: &str = "<i>Bob</i> Martin";
const THIRD_CUSTOMER: &str = "cyd-3001";
const THIRD_FIRST: &str = "Do you ship to Norway?";
const REFUSED: &str = "I'll look into it right away.";
const FOURTH_CUSTOMER: &str = "dan-4002";
const FOURTH_FIRST: &str = "Is the blue one back in stock?";
const FIFTH_CUSTOMER: &str = "eve-5003";

/// What the agent sees when things happen around it: messages in history order (live, after a
/// reload, after a server restart), HTML shown as text, the "Reconnecting…" badge while the
/// server is gone, the banner when another agent takes the open conversation, a take refused
/// because another agent got there first, and a reply the server refused shown as not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_what_happens_around_the_agent() {
    let Some(browser) = Browser::locate("console") else {
        return;
    };
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme Shop").await;
    let _ada = server.agent("ada@example.com", false).await;
    // An admin: the only kind of agent that may close a conversation another agent holds.
    let bea = server.agent("bea@example.com", true).await;
    server
        .patch_customer(&partner, CUSTOMER, &json!({"name": CUSTOMER_NAME}))
        .await;
    let conversation = server.conversation(&partner, CUSTOMER).await;
    server.say(&partner, conversation, CUSTOMER, FIRST).await;
    server
        .say(&partner, conversation, CUSTOMER, FOLLOW_UP)
        .await;

    let relay = Relay::start(&server);
    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open(&driver, &browser).await;
    let console = format!("http://{}/console/", relay.addr);
    page.goto(&console).await;
    page.type_into("#signin-email", "ada@example.com").await;
    page.type_into("#signin-password", PASSWORD).await;
    page.click("#signin-submit").await;
    page.wait_text("#connection-text", "Live").await;

    // History from before the page opened, in order.
    let item = format!("#queue-list .conv[data-id='{conversation}']");
    page.click(&item).await;
    page.wait_messages_in_order(&server.history(&partner, conversation).await, 2)
        .await;

    // Live while the page is open: the customer, the agent's own reply, the customer again.
    page.click("#take").await;
    page.wait_visible("#composer-input").await;
    server.say(&partner, conversation, CUSTOMER, MISSED).await;
    page.type_into("#composer-input", REPLY).await;
    page.type_into("#composer-input", &Key::Enter).await;
    page.wait_count("#messages li.own[data-id]", 1).await;
    page.wait_count("#messages li.pending", 0).await;
    let html = server
        .say(&partner, conversation, CUSTOMER, HTML_CONTENT)
        .await;
    let history = server.history(&partner, conversation).await;
    page.wait_messages_in_order(&history, 5).await;

    // HTML in a message is text: shown literally, no element made of it, nothing run. (The CSP
    // would block the inline handler anyway; the element count is what catches markup.)
    let html_node = format!("#messages li[data-id='{}'] .content", id_of(&html));
    page.wait_text(&html_node, HTML_CONTENT).await;
    page.wait_count(&format!("{html_node} *"), 0).await;
    let mine = format!("#mine-list .conv[data-id='{conversation}']");
    page.wait_text(&format!("{mine} .conv-preview"), HTML_CONTENT)
        .await;
    let injected = page
        .run(
            "return [document.querySelectorAll('img, b').length, window.__injected === undefined];",
        )
        .await;
    assert_eq!(
        injected,
        json!([0, true]),
        "[elements made of the message, no script ran]"
    );

    // After a reload: signed in still, the same messages in the same order.
    page.run("window.__noReload = true; return null;").await;
    page.goto(&console).await;
    assert_eq!(
        page.run("return window.__noReload || null;").await,
        Value::Null
    );
    page.wait_text("#connection-text", "Live").await;
    page.click(&mine).await;
    page.wait_messages_in_order(&history, 5).await;

    // The server goes away: the agent reads "Reconnecting…" until it is back, then "Live",
    // and what arrives next shows in order.
    server.kill();
    page.wait_text("#connection-text", "Reconnecting…").await;
    let server = Server::start(&db).await;
    relay.point_at(&server);
    page.wait_live_again().await;
    let body = page.run("return document.body.innerText;").await;
    assert!(
        !body.as_str().unwrap_or_default().contains("Reconnecting"),
        "\"Reconnecting\" is still on screen once live again:\n{body}"
    );
    server.say(&partner, conversation, CUSTOMER, ONE_MORE).await;
    let history = server.history(&partner, conversation).await;
    page.wait_messages_in_order(&history, 6).await;

    // Another agent takes the waiting conversation Ada has open: she is told, and cannot act.
    // The customer's name, which the partner chose, is HTML too: shown as text.
    server
        .patch_customer(&partner, OTHER_CUSTOMER, &json!({"name": HTML_NAME}))
        .await;
    let other = server.conversation(&partner, OTHER_CUSTOMER).await;
    server
        .say(&partner, other, OTHER_CUSTOMER, OTHER_FIRST)
        .await;
    let other_item = format!("#queue-list .conv[data-id='{other}']");
    page.wait_text(&format!("{other_item} .conv-name"), HTML_NAME)
        .await;
    page.click(&other_item).await;
    page.wait_text("#chat-title", HTML_NAME).await;
    page.wait_count("#workspace i", 0).await;
    page.wait_text("#chat-banner", "Take the conversation to reply.")
        .await;
    page.wait_visible("#take").await;
    server.assign(&bea, other).await;
    page.wait_text(
        "#chat-banner",
        "Another agent is handling this conversation.",
    )
    .await;
    page.wait_text("#chat-subtitle .status-pill", "With another agent")
        .await;
    page.wait_toast("Another agent took this conversation.")
        .await;
    page.wait_hidden("#take").await;
    page.wait_hidden("#composer").await;
    page.wait_count(&other_item, 0).await;
    page.wait_visible("#queue-empty").await;

    // Taking a conversation another agent took a moment before, while the live connection is
    // down (REST still works): refused, the agent is told, and it leaves the queue.
    // The agent dismisses the notices on screen, so that a new one can be told apart.
    page.run(
        "document.querySelectorAll('#toasts .toast-close').forEach((b) => b.click()); return null;",
    )
    .await;
    page.wait_count("#toasts .toast", 0).await;
    // First a conversation opened before its first message, as a widget does: the queue
    // shows "No messages yet", then the message once it is written. The page's requests are
    // counted so that the test writes only once the console has finished loading the entry.
    page.run(
        "if (!window.__counting) { window.__counting = true; window.__inflight = 0; \
         const fetch = window.fetch; window.fetch = (...args) => { window.__inflight += 1; \
         return fetch(...args).finally(() => { window.__inflight -= 1; }); }; } return null;",
    )
    .await;
    let (third, third_item) = empty_in_the_queue(&page, &server, &partner, THIRD_CUSTOMER).await;
    server
        .say(&partner, third, THIRD_CUSTOMER, THIRD_FIRST)
        .await;
    page.wait_text(&format!("{third_item} .conv-preview"), THIRD_FIRST)
        .await;
    page.click(&third_item).await;
    page.wait_text("#chat-banner", "Take the conversation to reply.")
        .await;
    relay.cut_websockets();
    page.wait_text("#connection-text", "Reconnecting…").await;
    server.assign(&bea, third).await;
    page.click("#take").await;
    page.wait_toast("Another agent took this conversation first.")
        .await;
    page.wait_text(
        "#chat-banner",
        "Another agent is handling this conversation.",
    )
    .await;
    page.wait_hidden("#take").await;
    page.wait_hidden("#composer").await;
    page.wait_count(&third_item, 0).await;
    page.wait_visible("#queue-empty").await;
    relay.restore();
    page.wait_live_again().await;
    // The take's event, replayed just before `ready`, is no news: it is not announced again.
    // (The first notice may have timed out by now; a second would be brand new.)
    let notices = page
        .run("return Array.from(document.querySelectorAll('#toasts .toast span')).map((n) => n.textContent);")
        .await;
    assert!(
        notices
            .as_array()
            .is_some_and(|all| !all.contains(&json!("Another agent took this conversation."))),
        "told twice that another agent took it: {notices}"
    );
    page.wait_text(
        "#chat-banner",
        "Another agent is handling this conversation.",
    )
    .await;

    // An older server lists conversations without their first message: the console fetches
    // it once. For one opened before its first message that finds none, the message written
    // next still shows, even after another refresh of the lists in between (the fifth
    // conversation's arrival).
    page.run(
        "window.__older = true; const inner = window.fetch; window.fetch = async (...args) => { \
         const url = String(args[0]); \
         if (!window.__older || !url.includes('/api/agent/conversations?status=')) return inner(...args); \
         window.__inflight += 1; \
         try { const response = await inner(...args); const list = JSON.parse(await response.text()); \
         for (const conv of list) delete conv.firstMessage; \
         return new Response(JSON.stringify(list), { status: response.status, headers: response.headers }); \
         } finally { window.__inflight -= 1; } }; return null;",
    )
    .await;
    let (fourth, fourth_item) = empty_in_the_queue(&page, &server, &partner, FOURTH_CUSTOMER).await;
    let fifth = server.conversation(&partner, FIFTH_CUSTOMER).await;
    let fifth_item = format!("#queue-list .conv[data-id='{fifth}']");
    page.wait_text(&format!("{fifth_item} .conv-name"), FIFTH_CUSTOMER)
        .await;
    page.wait_script(
        "the console's requests to finish",
        "return window.__inflight;",
        Value::Null,
        json!(0),
    )
    .await;
    server
        .say(&partner, fourth, FOURTH_CUSTOMER, FOURTH_FIRST)
        .await;
    page.wait_text(&format!("{fourth_item} .conv-preview"), FOURTH_FIRST)
        .await;
    page.run("window.__older = false; return null;").await;

    // Another agent takes the open conversation while the live connection is down, and the
    // console learns it from a fresh look at it before the event: the agent is still told
    // once the event arrives.
    page.run(
        "document.querySelectorAll('#toasts .toast-close').forEach((b) => b.click()); return null;",
    )
    .await;
    page.wait_count("#toasts .toast", 0).await;
    page.click(&fifth_item).await;
    page.wait_text("#chat-banner", "Take the conversation to reply.")
        .await;
    relay.cut_websockets();
    page.wait_text("#connection-text", "Reconnecting…").await;
    server.assign(&bea, fifth).await;
    page.click(&fifth_item).await;
    page.wait_text(
        "#chat-banner",
        "Another agent is handling this conversation.",
    )
    .await;
    relay.restore();
    page.wait_live_again().await;
    page.wait_toast("Another agent took this conversation.")
        .await;
    page.wait_count(&fifth_item, 0).await;

    // A reply written offline into a conversation that gets closed meanwhile: refused, and
    // shown so, never as sent.
    page.click(&mine).await;
    page.wait_visible("#composer-input").await;
    relay.cut();
    page.wait_text("#connection-text", "Reconnecting…").await;
    page.type_into("#composer-input", REFUSED).await;
    page.type_into("#composer-input", &Key::Enter).await;
    page.wait_text("#messages li.pending .tick", "Waiting for connection…")
        .await;
    server.close(&bea, conversation).await;
    relay.restore();
    page.wait_live_again().await;
    page.wait_text("#chat-banner", "This conversation is closed.")
        .await;
    page.wait_text("#messages li.pending.failed .content", REFUSED)
        .await;
    page.wait_text(
        "#messages li.pending.failed .send-error",
        "Not sent: conversation is closed",
    )
    .await;
    page.wait_visible("#messages li.pending.failed .retry")
        .await;
    page.wait_count("#messages li.pending.failed .tick", 0)
        .await;
    page.wait_count("#messages li.own[data-id]", 1).await;
    let history = server.history(&partner, conversation).await;
    assert_eq!(
        history.len(),
        6,
        "the refused reply was stored: {history:?}"
    );
    assert!(
        history.iter().all(|m| m["content"] != REFUSED),
        "the refused reply was stored: {history:?}"
    );

    page.quit().await;
    server.assert_no_panics();
}

const DRAFT_HEAD: &str = "Your order ";
const DRAFT_TAIL: &str = "ships today.";
const REFUND: &str = "I want my money back for this order.";
const REFUND_REASON: &str = "wants a refund";

/// Automated replies as the agent sees them: the open conversation shows the bot's draft as the
/// model writes it (slowly), then the stored reply in its place; a conversation the bot hands
/// off moves to the top of the queue with its reason, live and after a reload, and the reason
/// shows in the open conversation's header.
async fn automated_replies_stream_and_hand_offs_come_first(backend: Backend) {
    let Some(browser) = Browser::locate("console") else {
        return;
    };
    let db = TestDb::new(backend).await;
    let model = FakeModel::answering(|req: &Value| {
        if last_user_text(req) == REFUND {
            return Step::handoff(req, REFUND_REASON);
        }
        stream_pieces(&[
            (Duration::ZERO, DRAFT_HEAD),
            (Duration::from_millis(1500), DRAFT_TAIL),
        ])
    })
    .await;
    let server = Server::start_with(&db, &model.server_env()).await;
    let partner = server.register("Acme Shop").await;
    let _ada = server.agent("ada@example.com", false).await;
    server
        .patch_customer(&partner, CUSTOMER, &json!({"name": CUSTOMER_NAME}))
        .await;
    let conversation = server.conversation(&partner, CUSTOMER).await;

    let driver = ChromeDriver::start(&browser).await;
    let page = Page::open(&driver, &browser).await;
    let console = server.url("/console/");
    page.goto(&console).await;
    page.type_into("#signin-email", "ada@example.com").await;
    page.type_into("#signin-password", PASSWORD).await;
    page.click("#signin-submit").await;
    page.wait_text("#connection-text", "Live").await;
    let item = format!("#queue-list .conv[data-id='{conversation}']");
    page.click(&item).await;
    page.wait_text("#chat-title", CUSTOMER_NAME).await;

    // The draft: the first piece, labelled as the bot's, before the rest is written.
    server.say(&partner, conversation, CUSTOMER, FIRST).await;
    page.wait_text(
        "#messages li.from-bot.draft[aria-busy='true'] .content",
        DRAFT_HEAD.trim(),
    )
    .await;
    page.wait_text("#messages li.draft .sender", "Assistant")
        .await;
    assert!(
        !page.exists("#messages li.from-bot[data-id]").await,
        "stored before it was written"
    );
    page.save_element_screenshot("#chat", &screenshot_dir().join("draft.png"))
        .await;
    // Then the stored reply in its place: the history exactly, no draft beside it.
    let deadline = Instant::now() + WAIT;
    let history = loop {
        let history = server.history(&partner, conversation).await;
        if history.len() == 2 {
            break history;
        }
        assert!(Instant::now() < deadline, "no reply stored: {history:?}");
        tokio::time::sleep(POLL).await;
    };
    assert_eq!(history[1]["content"], format!("{DRAFT_HEAD}{DRAFT_TAIL}"));
    page.wait_count("#messages li.from-bot[data-id]", 1).await;
    assert!(
        !page.exists("#messages li.draft").await,
        "the draft stayed beside its reply"
    );
    page.wait_messages_in_order(&history, 2).await;

    // A second conversation, settled in the queue behind the first (it is newer), then handed
    // off: the live event alone moves it to the top and shows why.
    page.run(
        "window.__inflight = 0; const fetch = window.fetch; window.fetch = (...args) => { \
         window.__inflight += 1; return fetch(...args).finally(() => { window.__inflight -= 1; }); }; \
         return null;",
    )
    .await;
    let (other, other_item) = empty_in_the_queue(&page, &server, &partner, OTHER_CUSTOMER).await;
    let queue_order = "return Array.from(document.querySelectorAll(arguments[0]))\
                       .map((button) => Number(button.dataset.id));";
    page.wait_script(
        "the queue oldest first",
        queue_order,
        json!("#queue-list .conv"),
        json!([conversation, other]),
    )
    .await;
    let requests_before = page
        .run("return performance.getEntriesByType('resource').length;")
        .await;
    server.say(&partner, other, OTHER_CUSTOMER, REFUND).await;
    page.wait_script(
        "the handed-off conversation first",
        queue_order,
        json!("#queue-list .conv"),
        json!([other, conversation]),
    )
    .await;
    page.wait_text(&format!("{other_item} .handoff-reason"), REFUND_REASON)
        .await;
    page.wait_text(&format!("{other_item} .handoff-label"), "Needs a person")
        .await;
    assert!(
        !page.exists(&format!("{item} .conv-handoff")).await,
        "the conversation the bot answered is flagged too"
    );
    let unflagged = page.text(&item).await;
    assert!(
        unflagged.starts_with(CUSTOMER_NAME) && !unflagged.contains("null"),
        "{unflagged}"
    );
    // No list was fetched again for it: the socket's event set the flag.
    let lists = page
        .run(&format!(
            "return performance.getEntriesByType('resource').slice({requests_before})\
                 .filter((e) => e.name.includes('/api/agent/conversations?')).length;"
        ))
        .await;
    assert_eq!(lists, json!(0), "the queue was fetched again");
    page.click(&other_item).await;
    page.wait_text("#chat-handoff .handoff-reason", REFUND_REASON)
        .await;
    page.wait_count("#messages li.draft", 0).await;
    page.save_screenshot(&screenshot_dir().join("handoff.png"))
        .await;

    // After a reload the lists carry the flag.
    page.goto(&console).await;
    page.wait_text("#connection-text", "Live").await;
    page.wait_script(
        "the handed-off conversation first after a reload",
        queue_order,
        json!("#queue-list .conv"),
        json!([other, conversation]),
    )
    .await;
    page.wait_text(&format!("{other_item} .handoff-reason"), REFUND_REASON)
        .await;
    page.click(&item).await;
    page.wait_text("#chat-title", CUSTOMER_NAME).await;
    page.wait_hidden("#chat-handoff").await;
    page.quit().await;
    server.assert_no_panics();
}

on_both_backends!(automated_replies_stream_and_hand_offs_come_first);

/// "Waiting 12s", "Waiting 3m", "Waiting 1h 5m".
/// Opens a conversation for `customer` with no message yet, and waits until the queue shows it
/// as such and the console's requests have all come back (`window.__inflight`, counted by a
/// fetch wrapper the test installs): what the customer writes next reaches a settled page.
async fn empty_in_the_queue(
    page: &Page,
    server: &Server,
    partner: &Partner,
    customer: &str,
) -> (i64, String) {
    let conversation = server.conversation(partner, customer).await;
    let item = format!("#queue-list .conv[data-id='{conversation}']");
    page.wait_text(&format!("{item} .conv-name"), customer)
        .await;
    page.wait_text(&format!("{item} .conv-preview"), "No messages yet")
        .await;
    page.wait_script(
        "the console's requests to finish",
        "return window.__inflight;",
        Value::Null,
        json!(0),
    )
    .await;
    (conversation, item)
}

fn is_waiting_time(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("Waiting ") else {
        return false;
    };
    rest.split(' ').all(|part| {
        let digits = part.trim_end_matches(['s', 'm', 'h', 'd']);
        !digits.is_empty()
            && digits.len() < part.len()
            && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn id_of(message: &Value) -> i64 {
    message["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {message}"))
}

/// The customer's real WebSocket; every frame it receives is kept for the final checks.
struct Customer {
    ws: WsClient,
    frames: Vec<Value>,
}

impl Customer {
    async fn send(&mut self, frame: &Value) {
        self.ws.send(frame).await;
    }

    /// Reads frames until one matches; returns it and the frames read before it.
    async fn until(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let deadline = Instant::now() + WAIT;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(frame) = self.ws.next_within(left).await else {
                panic!("the customer never received {what}; got {skipped:?}");
            };
            self.frames.push(frame.clone());
            if matches(&frame) {
                return (frame, skipped);
            }
            skipped.push(frame);
        }
    }
}

/// `<target>/console-screenshots/`: CARGO_TARGET_DIR, else the workspace's target/.
fn screenshot_dir() -> PathBuf {
    artefact_dir("console-screenshots")
}

/// One browser session and the DOM checks the test makes through it.
struct Page {
    client: Client,
    /// Chromium's profile, fresh for every run.
    _profile: tempfile::TempDir,
}

impl Page {
    async fn open(driver: &ChromeDriver, browser: &Browser) -> Self {
        let (client, profile) = driver.session(browser).await;
        let page = Self {
            client,
            _profile: profile,
        };
        page.resize(1280, 800).await;
        page
    }

    async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// Sets the viewport (not the window) to exactly width x height.
    async fn resize(&self, width: u32, height: u32) {
        let inner = self
            .run("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];")
            .await;
        let extra = |i: usize| u32::try_from(inner[i].as_i64().unwrap_or(0)).unwrap_or(0);
        self.client
            .set_window_size(width + extra(0), height + extra(1))
            .await
            .unwrap_or_else(|e| panic!("resize to {width}x{height}: {e}"));
    }

    async fn run(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// What a selector shows: `{exists, visible, text, value, attrs}`.
    async fn probe(&self, selector: &str, attribute: &str) -> Value {
        let script = "const node = document.querySelector(arguments[0]);\
             if (!node) return {exists: false};\
             return {exists: true, visible: node.checkVisibility(),\
                     text: node.textContent.replace(/\\s+/g, ' ').trim(),\
                     value: node.value === undefined ? null : node.value,\
                     attr: node.getAttribute(arguments[1])};";
        self.client
            .execute(script, vec![json!(selector), json!(attribute)])
            .await
            .unwrap_or_else(|e| panic!("probing {selector}: {e}"))
    }

    /// Polls until `check` accepts what `selector` shows; fails with what it showed last.
    async fn wait_until(
        &self,
        selector: &str,
        attribute: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) {
        self.wait_until_within(WAIT, selector, attribute, what, check)
            .await;
    }

    async fn wait_until_within(
        &self,
        patience: Duration,
        selector: &str,
        attribute: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) {
        let deadline = Instant::now() + patience;
        loop {
            let seen = self.probe(selector, attribute).await;
            if check(&seen) {
                return;
            }
            if Instant::now() >= deadline {
                let failure = screenshot_dir().join("failure.png");
                self.save_screenshot(&failure).await;
                let body = self.run("return document.body.innerText;").await;
                panic!(
                    "waited {patience:?} for {selector} to {what}; it showed {seen}\n\
                     screenshot: {}\npage text:\n{}",
                    failure.display(),
                    body.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn wait_text(&self, selector: &str, expected: &str) {
        self.wait_until(selector, "", &format!("show {expected:?}"), |seen| {
            seen["visible"] == true && seen["text"] == expected
        })
        .await;
    }

    async fn wait_attr(&self, selector: &str, attribute: &str, expected: &str) {
        self.wait_until(
            selector,
            attribute,
            &format!("have {attribute}={expected:?}"),
            |seen| seen["attr"] == expected,
        )
        .await;
    }

    async fn wait_visible(&self, selector: &str) {
        self.wait_until(selector, "", "be visible", |seen| seen["visible"] == true)
            .await;
    }

    /// Waits until `selector` matches an element that is on the page but not shown. A selector
    /// that matches nothing fails: a typo or a removed element must not pass as "hidden". (To
    /// wait for something to be gone, use `wait_count(selector, 0)`.)
    async fn wait_hidden(&self, selector: &str) {
        self.wait_until(selector, "", "exist and be hidden", |seen| {
            seen["exists"] == true && seen["visible"] == false
        })
        .await;
    }

    /// Waits until the badge reads "Live" after a reconnect.
    async fn wait_live_again(&self) {
        self.wait_until_within(
            RECONNECT_WAIT,
            "#connection-text",
            "",
            "show \"Live\" again",
            |seen| seen["visible"] == true && seen["text"] == "Live",
        )
        .await;
    }

    /// Waits until a notice (toast) with exactly `text` is on screen.
    async fn wait_toast(&self, text: &str) {
        self.wait_script(
            &format!("a notice saying {text:?}"),
            "return Array.from(document.querySelectorAll('#toasts .toast span'))\
                 .some((node) => node.checkVisibility() && node.textContent === arguments[0]);",
            json!(text),
            json!(true),
        )
        .await;
    }

    /// Waits until the chat lists exactly `history` (`expected` messages), top to bottom:
    /// ids and contents, nothing pending, nothing else.
    async fn wait_messages_in_order(&self, history: &[Value], expected: usize) {
        assert_eq!(history.len(), expected, "the history: {history:?}");
        let shown: Vec<Value> = history
            .iter()
            .map(|m| json!([id_of(m).to_string(), m["content"]]))
            .collect();
        self.wait_script(
            "the messages in history order",
            "return Array.from(document.querySelectorAll(arguments[0])).map((li) => \
                 [li.dataset.id || null, li.querySelector('.content')?.textContent ?? null]);",
            json!("#messages > li"),
            Value::Array(shown),
        )
        .await;
    }

    async fn wait_count(&self, selector: &str, expected: usize) {
        self.wait_script(
            &format!("{expected} of {selector}"),
            "return document.querySelectorAll(arguments[0]).length;",
            json!(selector),
            json!(expected),
        )
        .await;
    }

    /// Polls a script (given one argument) until it returns `expected`.
    async fn wait_script(&self, what: &str, script: &str, argument: Value, expected: Value) {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = self
                .client
                .execute(script, vec![argument.clone()])
                .await
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
            if seen == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; got {seen}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn exists(&self, selector: &str) -> bool {
        self.probe(selector, "").await["exists"] == true
    }

    async fn text(&self, selector: &str) -> String {
        self.wait_visible(selector).await;
        self.probe(selector, "").await["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A form field's value; a selector that matches no field fails rather than reading "".
    async fn value(&self, selector: &str) -> String {
        let seen = self.probe(selector, "").await;
        seen["value"]
            .as_str()
            .unwrap_or_else(|| panic!("{selector} is not a field on the page: {seen}"))
            .to_owned()
    }

    /// Clicks like a user: the element must be visible first.
    async fn click(&self, selector: &str) {
        self.wait_visible(selector).await;
        self.client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("find {selector}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    /// Types key by key, so the page gets real key and input events.
    async fn type_into(&self, selector: &str, text: &str) {
        self.wait_visible(selector).await;
        self.client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("find {selector}: {e}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {selector}: {e}"));
    }

    async fn clear(&self, selector: &str) {
        self.client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("find {selector}: {e}"))
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {selector}: {e}"));
    }

    async fn save_screenshot(&self, path: &Path) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    async fn save_element_screenshot(&self, selector: &str, path: &Path) {
        let png = self
            .client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("find {selector}: {e}"))
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot of {selector}: {e}"));
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    async fn quit(self) {
        let _ = self.client.close().await;
    }
}
