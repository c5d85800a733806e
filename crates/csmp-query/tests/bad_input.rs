//! Query input the read models cannot answer is refused naming the field, before any SQL runs.

mod harness;

use std::time::Duration;

use csmp_proto::v1 as pb;
use harness::support::*;
use harness::*;
use tonic::Code;

#[tokio::test]
async fn malformed_filters_and_ranges_name_the_field() {
    let h = Harness::new("bad_input", at(12, 0), Duration::from_secs(1)).await;
    let mut client = h.client.clone();

    let history = client
        .get_customer_history(pb::GetCustomerHistoryRequest {
            tenant: "acme".into(),
            customer_id: "c\0".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let queue = client
        .list_queue(pb::ListQueueRequest {
            tenant: "acme".into(),
            assignee: "agent\0".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let reversed = client
        .get_feedback_summary(pb::FeedbackSummaryRequest {
            tenant: "acme".into(),
            from: Some(ts(at(12, 0))),
            to: Some(ts(at(11, 0))),
            group_by: pb::FeedbackGrouping::None as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    let ancient = client
        .get_agent_performance(pb::AgentPerformanceRequest {
            tenant: "acme".into(),
            from: Some(prost_types::Timestamp { seconds: -1, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap_err();

    let answers: Vec<_> = [history, queue, reversed, ancient]
        .into_iter()
        .map(|status| (status.code(), status.message().to_owned()))
        .collect();
    assert_eq!(
        answers,
        [
            (
                Code::InvalidArgument,
                "invalid customer_id: must not contain control characters".to_owned()
            ),
            (Code::InvalidArgument, "invalid assignee: must not contain control characters".into()),
            (
                Code::InvalidArgument,
                format!("invalid from: {} is after to, {}", at(12, 0), at(11, 0))
            ),
            (
                Code::InvalidArgument,
                "invalid from: 1969-12-31 23:59:59 UTC is not between 1970-01-01 00:00:00 and \
                 9999-12-31 23:59:59 UTC"
                    .into()
            ),
        ]
    );
    h.shutdown().await;
}
