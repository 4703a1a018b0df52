//! Changes that destroy something, over real sockets (mirrors `src/views/trash.rs`, the delete of
//! `src/views/record_show.rs` and `src/views/schema_change.rs`): the trash page lists deleted records live, with who
//! deleted them, an editor restores one as it was and only an admin deletes forever, after confirming; a delete asks
//! first and names who is editing; an entity change that moves URLs or deletes record values asks first, with counts.

#[path = "support/live.rs"]
#[allow(dead_code)]
mod live_support;

use std::time::Duration;

use axum::http::Method;
use live_support::{LiveServer, Peer, start};
use livebaton_admin::accounts::Role;
use livebaton_admin::storage::User;
use serde_json::{Map, Value, json};

async fn open_trash(server: &LiveServer, user: &User, tab: &str) -> (Peer, Value) {
    let mut peer = server.connect(&server.token(user).await).await;
    let params: Map<String, Value> = [("entity".to_owned(), json!("article"))].into_iter().collect();
    let token = server.state.views.token("trash", &params);
    let reply = peer.join_ok("lv:trash", json!({"token": token, "tab_id": tab})).await;
    (peer, reply["rendered"]["regions"].clone())
}

async fn click(peer: &mut Peer, name: &str, id: i64) -> Value {
    let value = json!({"id": id.to_string()});
    let reply = peer.push("lv:trash", "event", json!({"type": "click", "event": name, "value": value})).await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    reply[4]["response"].clone()
}

/// The next `diff` on the trash page whose text contains `needle`.
async fn diff_containing(peer: &mut Peer, needle: &str) -> Value {
    peer.take(&format!("a diff containing {needle:?}"), |frame| {
        frame[2] == "lv:trash" && frame[3] == "diff" && frame[4].to_string().contains(needle)
    })
    .await
}

#[tokio::test]
async fn the_trash_page_restores_records_and_only_admins_delete_forever() {
    let server = start(Duration::from_millis(300), Vec::new()).await;
    let edda = server.user("edda@example.com", "Edda", Role::Editor).await;
    let admin = server.user("admin@example.com", "Ada", Role::Admin).await;
    livebaton_admin::seed::bootstrap(&server.state.content, None, true).await.expect("the demo seeds");
    let article = server.state.store.find_entity_by_name("article").await.unwrap().expect("the demo entity");
    let records = server.state.store.list_records(article.id).await.unwrap();
    let (kept, doomed) = (records[0].clone(), records[1].clone());

    let (mut edda_page, regions) = open_trash(&server, &edda, "edda").await;
    assert!(regions.to_string().contains("The trash is empty."), "{regions}");
    let (mut admin_page, _) = open_trash(&server, &admin, "ada").await;

    // Deleted elsewhere (the API): both pages list it live, with who deleted it.
    for record in [&kept, &doomed] {
        let uri = format!("/api/entities/article/records/{}", record.id);
        assert_eq!(server.api(Method::DELETE, &uri, &server.token(&edda).await, None).await.status, 204);
    }
    let diff = diff_containing(&mut edda_page, &doomed.title).await;
    assert!(diff.to_string().contains("by Edda"), "{diff}");
    assert!(!diff.to_string().contains("Delete forever"), "an editor is not offered to delete forever: {diff}");
    diff_containing(&mut admin_page, "Delete forever").await;

    // An editor's "delete forever" is refused; the record stays in the trash.
    let refused = click(&mut edda_page, "purge", doomed.id).await;
    assert!(refused.to_string().contains("Only admins may delete forever"), "{refused}");
    let refused = click(&mut edda_page, "purge_confirmed", doomed.id).await;
    assert!(refused.to_string().contains("Only admins may delete forever"), "{refused}");
    assert_eq!(server.state.store.list_trash(article.id).await.unwrap().len(), 2);

    // An admin confirms first; only then is it gone for good.
    let asked = click(&mut admin_page, "purge", doomed.id).await;
    assert!(asked.to_string().contains("It cannot be restored afterwards"), "{asked}");
    assert_eq!(server.state.store.list_trash(article.id).await.unwrap().len(), 2, "nothing yet");
    let done = click(&mut admin_page, "purge_confirmed", doomed.id).await;
    assert!(done.to_string().contains("deleted forever"), "{done}");
    let trash: Vec<i64> = server.state.store.list_trash(article.id).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(trash, vec![kept.id]);

    // The editor restores the other one: it is back as it was, and the admin's page empties.
    let restored = click(&mut edda_page, "restore", kept.id).await;
    let to = format!("/admin/entities/article/data/{}", kept.id);
    assert_eq!(restored["redirect"]["to"], to.as_str(), "{restored}");
    assert_eq!(server.state.store.find_record(article.id, kept.id).await.unwrap(), Some(kept.clone()));
    diff_containing(&mut admin_page, "The trash is empty.").await;
}

/// Delete on the record page asks first and names who is editing the record; cancelling deletes nothing, confirming
/// moves it to the trash (and back to the list, saying where it went).
#[tokio::test]
async fn a_delete_asks_first_and_names_who_is_editing() {
    let server = start(Duration::from_millis(300), Vec::new()).await;
    let edda = server.user("edda@example.com", "Edda", Role::Editor).await;
    let bob = server.user("bob@example.com", "Bob", Role::Editor).await;
    livebaton_admin::seed::bootstrap(&server.state.content, None, true).await.expect("the demo seeds");
    let article = server.state.store.find_entity_by_name("article").await.unwrap().expect("the demo entity");
    let record = server.state.store.list_records(article.id).await.unwrap().remove(0);
    let params: Map<String, Value> =
        [("entity".to_owned(), json!("article")), ("id".to_owned(), json!(record.id.to_string()))]
            .into_iter()
            .collect();

    // Edda has the record's form open.
    let mut edda_socket = server.connect(&server.token(&edda).await).await;
    let mut edit = params.clone();
    edit.insert("path".to_owned(), json!("/edit"));
    let token = server.state.views.token("record_edit", &edit);
    edda_socket.join_ok("lv:record_edit", json!({"token": token, "tab_id": "edda"})).await;

    let mut bob_socket = server.connect(&server.token(&bob).await).await;
    let token = server.state.views.token("record_show", &params);
    bob_socket.join_ok("lv:record_show", json!({"token": token, "tab_id": "bob"})).await;
    let push = |event: &str| json!({"type": "click", "event": event, "value": {}});
    let asked = bob_socket.push("lv:record_show", "event", push("delete")).await;
    assert!(asked.to_string().contains("to the trash?"), "{asked}");
    assert!(asked.to_string().contains("Edda is"), "names who is editing: {asked}");
    bob_socket.push("lv:record_show", "event", push("delete_cancel")).await;
    let forged = bob_socket.push("lv:record_show", "event", push("delete_confirmed")).await;
    assert!(forged.to_string().contains("to the trash?"), "a confirmation nobody asked for asks again: {forged}");
    assert!(server.state.store.find_record(article.id, record.id).await.unwrap().is_some(), "nothing deleted yet");

    let done = bob_socket.push("lv:record_show", "event", push("delete_confirmed")).await;
    assert_eq!(done[4]["response"]["redirect"]["to"], "/admin/entities/article/data", "{done}");
    assert!(done.to_string().contains("moved to the trash"), "{done}");
    assert_eq!(server.state.store.list_trash(article.id).await.unwrap().len(), 1);
}

/// The entity form asks before a save that renames the entity or removes a field records hold values in, with the
/// counts; any change withdraws the question; confirming saves, and the values are pruned.
#[tokio::test]
async fn an_entity_change_that_breaks_urls_or_deletes_values_asks_first() {
    let server = start(Duration::from_millis(300), Vec::new()).await;
    let ada = server.user("ada@example.com", "Ada", Role::Admin).await;
    livebaton_admin::seed::bootstrap(&server.state.content, None, true).await.expect("the demo seeds");
    let article = server.state.store.find_entity_by_name("article").await.unwrap().expect("the demo entity");
    let summary = article.fields_definition.iter().position(|field| field.key == "summary").expect("a summary field");
    let holding = server.state.store.count_records_with_value(article.id, "summary").await.unwrap();
    assert!(holding > 0, "the demo records have summaries");

    let mut socket = server.connect(&server.token(&ada).await).await;
    let params: Map<String, Value> =
        [("id".to_owned(), json!(article.id.to_string())), ("path".to_owned(), json!("/edit"))].into_iter().collect();
    let token = server.state.views.token("entity_edit", &params);
    socket.join_ok("lv:entity_edit", json!({"token": token, "tab_id": "ada"})).await;

    // The form as the browser sends it: renamed to "story", without the summary field.
    let mut form = vec![
        "display_name=Article".to_owned(),
        "display_name_plural=Articles".to_owned(),
        "name=story".to_owned(),
        "status=published".to_owned(),
        "description=".to_owned(),
    ];
    for (n, field) in article.fields_definition.iter().enumerate().filter(|(n, _)| *n != summary) {
        form.push(format!("fields%5B{n}%5D%5Btype%5D={}", field.field_type.as_str()));
        form.push(format!("fields%5B{n}%5D%5Bkey%5D={}", field.key));
        form.push(format!("fields%5B{n}%5D%5Blabel%5D={}", field.label.replace(' ', "+")));
        form.push(format!("fields%5B{n}%5D%5Boptions%5D={}", field.options.join("%0A")));
        if field.required {
            form.push(format!("fields%5B{n}%5D%5Brequired%5D=true"));
        }
    }
    let event = |kind: &str, name: &str, value: Value| json!({"type": kind, "event": name, "value": value});
    let asked = socket.push("lv:entity_edit", "event", event("submit", "save", json!(form.join("&")))).await;
    let text = asked.to_string();
    assert!(text.contains("The machine name changes from"), "{text}");
    let sentence = if holding == 1 { "1 record has".to_owned() } else { format!("{holding} records have") };
    assert!(text.contains(&sentence) && text.contains("Summary"), "the removed field with its count: {text}");
    let unchanged = server.state.store.find_entity(article.id).await.unwrap().expect("the entity");
    assert_eq!(unchanged.name, "article", "nothing saved before the confirmation");

    // A change withdraws the question; a confirmation nobody was asked for does nothing.
    socket.push("lv:entity_edit", "event", event("change", "draft", json!(form.join("&")))).await;
    socket.push("lv:entity_edit", "event", event("click", "save_confirmed", json!({}))).await;
    assert_eq!(server.state.store.find_entity(article.id).await.unwrap().expect("the entity").name, "article");

    socket.push("lv:entity_edit", "event", event("submit", "save", json!(form.join("&")))).await;
    socket.push("lv:entity_edit", "event", event("click", "save_confirmed", json!({}))).await;
    let saved = server.state.store.find_entity(article.id).await.unwrap().expect("the entity");
    assert_eq!(saved.name, "story");
    assert!(saved.fields_definition.iter().all(|field| field.key != "summary"));
    assert_eq!(server.state.store.count_records_with_value(article.id, "summary").await.unwrap(), 0, "pruned");
}
