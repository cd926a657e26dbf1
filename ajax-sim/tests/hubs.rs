//! Stateful hubs over HTTP: reads, arming (plain, groups, two-stage), panic, device commands and
//! edits, the log they write, and the spec samples of operations without state.

mod common;

use std::time::Duration;

use ajax_sim::seed;
use common::{Session, TestSim, ajax_error, body, hub_path, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn demo() -> (TestSim, Session) {
    let sim = start().await;
    let session = sim.login_demo().await;
    (sim, session)
}

fn home(session: &Session) -> String {
    hub_path(&session.user_id, seed::DEMO_HUB_ID)
}

async fn read(sim: &TestSim, path: &str, session: &Session) -> Value {
    let response = sim.get(path, session).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    body(response).await
}

fn tags(logs: &Value) -> Vec<&str> {
    logs.as_array()
        .expect("log list")
        .iter()
        .map(|e| e["eventTag"].as_str().expect("eventTag"))
        .collect()
}

#[tokio::test]
async fn the_hub_list_shows_the_users_own_hubs_with_their_roles() {
    let (sim, session) = demo().await;
    let hubs = read(&sim, &format!("/api/user/{}/hubs", session.user_id), &session).await;
    assert_eq!(
        hubs,
        json!([
            {"hubId": seed::DEMO_HUB_ID, "hubBindingRole": "MASTER"},
            {"hubId": seed::DEMO_GROUPS_HUB_ID, "hubBindingRole": "MASTER"},
        ])
    );
}

#[tokio::test]
async fn a_hub_reads_as_the_spec_sample_with_the_simulated_id_name_and_state() {
    let (sim, session) = demo().await;
    let hub = read(&sim, &home(&session), &session).await;
    assert_eq!(hub["id"], seed::DEMO_HUB_ID);
    assert_eq!(hub["name"], "Home");
    assert_eq!(hub["state"], "DISARMED");
    assert!(hub.get("firmware").is_some() && hub.get("battery").is_some());
}

#[tokio::test]
async fn arming_shows_in_the_hub_state_and_as_an_arm_entry_in_the_logs() {
    let (sim, session) = demo().await;
    let arm = json!({"command": "ARM", "ignoreProblems": true});
    let response = sim
        .put(&format!("{}/commands/arming", home(&session)), &session, arm)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let hub = read(&sim, &home(&session), &session).await;
    assert_eq!(hub["state"], "ARMED");
    let logs = read(&sim, &format!("{}/logs", home(&session)), &session).await;
    assert_eq!(tags(&logs)[0], "Arm");
    let entry = &logs[0];
    assert_eq!(entry["sourceObjectType"], "USER");
    assert_eq!(entry["sourceObjectId"], seed::DEMO_USER_ID);
    assert_eq!(entry["sourceObjectName"], "Demo");
    assert_eq!(entry["hubId"], seed::DEMO_HUB_ID);
    assert!(entry["timestamp"].as_u64().expect("timestamp") > logs[1]["timestamp"].as_u64().expect("older"));
    let devices = read(&sim, &format!("{}/devices", home(&session)), &session).await;
    assert_eq!(devices[0]["model"]["estimatedArmingState"], "ARMED");

    let night = json!({"command": "NIGHT_MODE_ON", "ignoreProblems": false});
    let path = format!("{}/commands/arming", home(&session));
    assert_eq!(sim.put(&path, &session, night).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(read(&sim, &home(&session), &session).await["state"], "NIGHT_MODE");
    let disarm = json!({"command": "DISARM", "ignoreProblems": false});
    assert_eq!(sim.put(&path, &session, disarm).await.status(), StatusCode::NO_CONTENT);
    let logs = read(&sim, &format!("{}/logs", home(&session)), &session).await;
    assert_eq!(tags(&logs)[..3], ["Disarm", "NightModeOn", "Arm"]);
}

#[tokio::test]
async fn an_unknown_arming_command_is_a_422_and_a_body_that_is_not_json_a_400() {
    let (sim, session) = demo().await;
    let path = format!("{}/commands/arming", home(&session));
    let unknown = sim
        .put(
            &path,
            &session,
            json!({"command": "SELF_DESTRUCT", "ignoreProblems": false}),
        )
        .await;
    assert_eq!(
        ajax_error(unknown, StatusCode::UNPROCESSABLE_ENTITY).await,
        "Validation error"
    );
    let missing = sim.put(&path, &session, json!({"ignoreProblems": false})).await;
    ajax_error(missing, StatusCode::UNPROCESSABLE_ENTITY).await;
    let garbage = sim
        .user(Method::PUT, &path, &session)
        .body("ARM please")
        .send()
        .await
        .expect("send");
    ajax_error(garbage, StatusCode::BAD_REQUEST).await;
    let night_off = sim
        .put(
            &path,
            &session,
            json!({"command": "NIGHT_MODE_OFF", "ignoreProblems": false}),
        )
        .await;
    ajax_error(night_off, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(read(&sim, &home(&session), &session).await["state"], "DISARMED");
}

#[tokio::test]
async fn a_groups_mode_hub_arms_groups_one_by_one_and_reports_partial_arming() {
    let (sim, session) = demo().await;
    let office = hub_path(&session.user_id, seed::DEMO_GROUPS_HUB_ID);
    let groups = read(&sim, &format!("{office}/groups"), &session).await;
    let ids: Vec<&str> = groups
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, seed::DEMO_GROUP_IDS);
    let group = seed::DEMO_GROUP_IDS[0];
    let arm = json!({"command": "ARM", "ignoreProblems": false});
    let path = format!("{office}/groups/{group}/commands/arming");
    assert_eq!(sim.put(&path, &session, arm).await.status(), StatusCode::NO_CONTENT);
    let read_group = read(&sim, &format!("{office}/groups/{group}"), &session).await;
    assert_eq!(read_group["state"], "ARMED");
    let hub = read(&sim, &office, &session).await;
    assert_eq!(hub["state"], "PARTIALLY_ARMED_NIGHT_MODE_OFF");
    assert_eq!(hub["groupsEnabled"], true);
    let logs = read(&sim, &format!("{office}/logs"), &session).await;
    assert_eq!(tags(&logs)[0], "GroupArm");
    let unknown_group = format!("{office}/groups/0004AFFF/commands/arming");
    let missing = sim
        .put(
            &unknown_group,
            &session,
            json!({"command": "ARM", "ignoreProblems": false}),
        )
        .await;
    ajax_error(missing, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_two_stage_hub_answers_202_with_a_token_whose_status_reaches_success() {
    let sim = start().await;
    let session = sim.login_as(seed::DEMO2_LOGIN, seed::DEMO_PASSWORD).await;
    let cottage = hub_path(&session.user_id, seed::DEMO2_HUB_ID);
    let path = format!("{cottage}/commands/arming");
    let response = sim
        .put(&path, &session, json!({"command": "ARM", "ignoreProblems": false}))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let token = body(response).await["token"].as_str().expect("token").to_owned();
    let status = read(&sim, &format!("{path}?token={token}"), &session).await;
    assert_eq!(status["status"], "IN_PROGRESS");
    assert_eq!(read(&sim, &cottage, &session).await["state"], "DISARMED");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let status = read(&sim, &format!("{path}?token={token}"), &session).await;
    assert_eq!(status["status"], "SUCCESS");
    assert_eq!(read(&sim, &cottage, &session).await["state"], "ARMED");
    let unknown = sim.get(&format!("{path}?token=00"), &session).await;
    ajax_error(unknown, StatusCode::NOT_FOUND).await;
    let no_token = sim.get(&path, &session).await;
    ajax_error(no_token, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn switching_a_relay_on_shows_in_later_reads_and_the_log() {
    let (sim, session) = demo().await;
    let device = format!("{}/devices/{}", home(&session), seed::DEMO_RELAY_ID);
    let before = read(&sim, &device, &session).await;
    assert_eq!(before["switchState"], json!(["SWITCHED_OFF"]));
    let command = json!({"command": "SWITCH_ON", "deviceType": "Relay"});
    let response = sim.post(&format!("{device}/command"), &session, command).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let after = read(&sim, &device, &session).await;
    assert_eq!(after["switchState"], json!(["SWITCHED_ON"]));
    let logs = read(&sim, &format!("{}/logs", home(&session)), &session).await;
    assert_eq!(tags(&logs)[0], "SwitchedOn");
    let wrong_type = json!({"command": "SWITCH_OFF", "deviceType": "DoorProtect"});
    let refused = sim.post(&format!("{device}/command"), &session, wrong_type).await;
    ajax_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    let door = format!("{}/devices/{}/command", home(&session), seed::DEMO_DOOR_ID);
    let not_a_switch = json!({"command": "SWITCH_ON", "deviceType": "DoorProtect"});
    ajax_error(
        sim.post(&door, &session, not_a_switch).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn a_device_update_shows_in_later_reads() {
    let (sim, session) = demo().await;
    let device = format!("{}/devices/{}", home(&session), seed::DEMO_DOOR_ID);
    let update = json!({
        "deviceName": "Back door",
        "roomId": seed::DEMO_ROOM_IDS[2],
        "armDelaySeconds": 30,
    });
    assert_eq!(
        sim.put(&device, &session, update).await.status(),
        StatusCode::NO_CONTENT
    );
    let after = read(&sim, &device, &session).await;
    assert_eq!(after["deviceName"], "Back door");
    assert_eq!(after["roomId"], seed::DEMO_ROOM_IDS[2]);
    assert_eq!(after["armDelaySeconds"], 30);
    let list = read(&sim, &format!("{}/devices", home(&session)), &session).await;
    assert_eq!(list[0]["deviceName"], "Back door");
    let bad_room = json!({"deviceName": "X", "roomId": "0003AFFF"});
    ajax_error(
        sim.put(&device, &session, bad_room).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let missing = format!("{}/devices/0002AFFF", home(&session));
    ajax_error(sim.get(&missing, &session).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn panic_answers_204_and_is_logged_as_an_alarm_by_the_user() {
    let (sim, session) = demo().await;
    let panic =
        json!({"location": {"latitude": 50.4, "longitude": 30.5, "accuracy": 5.0, "speed": 0.0, "timestamp": 1}});
    let response = sim
        .put(&format!("{}/commands/panic", home(&session)), &session, panic)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let logs = read(&sim, &format!("{}/logs", home(&session)), &session).await;
    assert_eq!(logs[0]["eventTag"], "Panic");
    assert_eq!(logs[0]["eventType"], "ALARM");
    assert_eq!(logs[0]["sourceObjectId"], seed::DEMO_USER_ID);
}

#[tokio::test]
async fn devices_rooms_users_and_spaces_list_the_seeded_furniture() {
    let (sim, session) = demo().await;
    let devices = read(&sim, &format!("{}/devices", home(&session)), &session).await;
    let types: Vec<&str> = devices
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["deviceType"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        ["DoorProtect", "MotionProtect", "FireProtect", "Relay", "WallSwitch"]
    );
    let rooms = read(&sim, &format!("{}/rooms", home(&session)), &session).await;
    assert_eq!(rooms[0]["id"], seed::DEMO_ROOM_IDS[0]);
    assert_eq!(rooms[0]["roomName"], "Hall");
    let users = read(&sim, &format!("{}/users", home(&session)), &session).await;
    assert_eq!(users[0]["id"], seed::DEMO_USER_ID);
    assert_eq!(users[0]["hubBindingRole"], "MASTER");
    assert_eq!(users[1]["hubBindingRole"], "USER");
    let spaces = read(&sim, &format!("/api/user/{}/spaces", session.user_id), &session).await;
    assert_eq!(spaces, json!([{"id": seed::DEMO_SPACE_ID, "name": "Demo home"}]));
    let space_path = format!("/api/user/{}/spaces/{}", session.user_id, seed::DEMO_SPACE_ID);
    let space = read(&sim, &space_path, &session).await;
    assert_eq!(space["devices"].as_array().map(Vec::len), Some(2));
    let user = read(&sim, &format!("/api/user/{}", session.user_id), &session).await;
    assert_eq!(user["login"], seed::DEMO_LOGIN);
    let groups = read(&sim, &format!("{}/groups", home(&session)), &session).await;
    assert_eq!(groups, json!([]));
}

#[tokio::test]
async fn logs_are_paged_newest_first() {
    let (sim, session) = demo().await;
    let panic = format!("{}/commands/panic", home(&session));
    for _ in 0..25 {
        let response = sim.put(&panic, &session, json!({})).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    let logs = format!("{}/logs", home(&session));
    let first = read(&sim, &format!("{logs}?page=1"), &session).await;
    assert_eq!(first.as_array().map(Vec::len), Some(20));
    let second = read(&sim, &format!("{logs}?page=2"), &session).await;
    let mut expected = vec!["Panic"; 5];
    expected.extend(["MotionDetected", "DoorOpened", "Disarm"]);
    assert_eq!(tags(&second), expected);
    ajax_error(
        sim.get(&format!("{logs}?page=0"), &session).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn an_operation_without_simulated_state_answers_its_spec_sample() {
    let (sim, session) = demo().await;
    let cameras = read(&sim, &format!("{}/cameras", home(&session)), &session).await;
    let camera = &cameras[0];
    assert!(camera.get("streamDataUrl").is_some() && camera.get("serviceType").is_some());
    let mute = sim
        .put(
            &format!("{}/commands/muteFireDetectors", home(&session)),
            &session,
            json!({}),
        )
        .await;
    assert!(mute.status().is_success());
    let not_mine = format!("{}/cameras", hub_path(&session.user_id, seed::DEMO2_HUB_ID));
    ajax_error(sim.get(&not_mine, &session).await, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn a_public_operation_answers_its_sample_without_a_session() {
    let sim = start().await;
    let response = sim
        .call(Method::PUT, "/api/user/resetPassword")
        .json(&json!({"login": "someone@example.com"}))
        .send()
        .await
        .expect("send");
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test]
async fn unknown_paths_answer_404_and_wrong_methods_405_in_ajax_shape() {
    let (sim, session) = demo().await;
    let unknown = sim
        .get(&format!("/api/user/{}/nothing-here", session.user_id), &session)
        .await;
    assert_eq!(ajax_error(unknown, StatusCode::NOT_FOUND).await, "Not found");
    let outside = sim.get("/elsewhere", &session).await;
    ajax_error(outside, StatusCode::NOT_FOUND).await;
    let company = sim.get("/api/company/C1/hubs", &session).await;
    ajax_error(company, StatusCode::NOT_FOUND).await;
    let wrong_method = sim
        .user(Method::DELETE, &format!("/api/user/{}/hubs", session.user_id), &session)
        .send()
        .await
        .expect("send");
    ajax_error(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;
}
