//! The group coordinator: Kafka's classic consumer-group protocol (FindCoordinator,
//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ListGroups, DescribeGroups), so several
//! consumers of one group share a topic's partitions and rebalance when one comes or goes.
//!
//! Membership lives in memory (as in Kafka, a restart makes members rejoin); committed
//! offsets live in the catalog (`offsets.rs`). The state machine is Kafka's:
//! `Empty → PreparingRebalance → CompletingRebalance → Stable`. A rebalance waits until
//! every known member has rejoined, or until the rebalance timeout or a member's session
//! timeout drops the missing ones; the elected leader's assignment is handed out by
//! SyncGroup. This node coordinates every group.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use streamhouse_streams::Streams;
use tokio::sync::oneshot;

use crate::topics::BROKER_ID;
use crate::{text, Broker};

/// A new group waits this long for more members before its first generation, so
/// consumers started together share one rebalance (Kafka's
/// `group.initial.rebalance.delay.ms`, shortened).
const INITIAL_REBALANCE_DELAY: Duration = Duration::from_millis(300);
/// How often sessions and rebalance deadlines are checked.
const EXPIRY_TICK: Duration = Duration::from_millis(100);
/// Bounds on what clients may ask for (Kafka's group.min/max.session.timeout.ms).
const MIN_SESSION_TIMEOUT: Duration = Duration::from_millis(1000);
const MAX_SESSION_TIMEOUT: Duration = Duration::from_secs(1800);
/// Members per group, at most.
const MAX_GROUP_MEMBERS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

struct Member {
    client_id: String,
    protocols: Vec<(String, Bytes)>,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    last_seen: Instant,
    assignment: Bytes,
    /// Rejoined in the current rebalance.
    joined: bool,
}

struct Group {
    state: State,
    generation: i32,
    protocol_type: String,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    rebalance_deadline: Instant,
    join_waiters: Vec<(String, oneshot::Sender<JoinGroupResponse>)>,
    sync_waiters: Vec<(String, oneshot::Sender<SyncGroupResponse>)>,
}

impl Group {
    fn new(protocol_type: &str) -> Group {
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type: protocol_type.to_string(),
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            rebalance_deadline: Instant::now(),
            join_waiters: Vec::new(),
            sync_waiters: Vec::new(),
        }
    }

    /// Starts (or keeps) a rebalance: every member must join again.
    fn prepare_rebalance(&mut self, initial: bool) {
        if self.state != State::PreparingRebalance {
            for m in self.members.values_mut() {
                m.joined = false;
            }
            let timeout = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
            self.rebalance_deadline = Instant::now() + if initial { INITIAL_REBALANCE_DELAY } else { timeout };
        }
        // Members waiting for their assignment of a generation that is now over.
        for (_, waiter) in self.sync_waiters.drain(..) {
            let _ = waiter.send(SyncGroupResponse::default().with_error_code(ResponseError::RebalanceInProgress.code()));
        }
        self.state = State::PreparingRebalance;
    }

    /// Ends the join phase when everyone has joined (or the deadline passed): members
    /// that did not rejoin are dropped, a new generation starts, and the waiting
    /// JoinGroup calls are answered (the leader gets everyone's metadata).
    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != State::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.joined);
        let initial_wait = self.generation == 0 && now < self.rebalance_deadline;
        if !(now >= self.rebalance_deadline || (all_joined && !initial_wait)) {
            return;
        }
        self.members.retain(|_, m| m.joined);
        if self.members.is_empty() {
            self.state = State::Empty;
            self.leader = None;
            self.protocol = None;
            self.generation += 1;
            for (_, waiter) in self.join_waiters.drain(..) {
                let _ = waiter.send(JoinGroupResponse::default().with_error_code(ResponseError::UnknownMemberId.code()));
            }
            return;
        }
        self.generation += 1;
        if !self.leader.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.clone().expect("a leader among the members");
        // The first protocol of the leader's preference that every member speaks.
        self.protocol = self.members[&leader]
            .protocols
            .iter()
            .map(|(name, _)| name.clone())
            .find(|name| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name)));
        self.state = State::CompletingRebalance;
        // The leader has until then to hand out the assignment (see `Coordinator::tick`).
        self.rebalance_deadline = now + self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        let Some(protocol) = self.protocol.clone() else {
            for (_, waiter) in self.join_waiters.drain(..) {
                let _ = waiter.send(JoinGroupResponse::default().with_error_code(ResponseError::InconsistentGroupProtocol.code()));
            }
            return;
        };
        let everyone: Vec<JoinGroupResponseMember> = self
            .members
            .iter()
            .map(|(id, m)| {
                let metadata = m.protocols.iter().find(|(n, _)| *n == protocol).map(|(_, md)| md.clone()).unwrap_or_default();
                JoinGroupResponseMember::default().with_member_id(text(id)).with_metadata(metadata)
            })
            .collect();
        for (member_id, waiter) in self.join_waiters.drain(..) {
            let mut response = JoinGroupResponse::default()
                .with_generation_id(self.generation)
                .with_protocol_type(Some(text(self.protocol_type.as_str())))
                .with_protocol_name(Some(text(protocol.as_str())))
                .with_leader(text(leader.as_str()))
                .with_member_id(text(member_id.as_str()));
            if member_id == leader {
                response.members = everyone.clone();
            }
            let _ = waiter.send(response);
        }
        for m in self.members.values_mut() {
            m.last_seen = now;
        }
    }

    fn remove_member(&mut self, member_id: &str) {
        if self.members.remove(member_id).is_none() {
            return;
        }
        if self.members.is_empty() && self.join_waiters.is_empty() {
            self.state = State::Empty;
            self.leader = None;
            for (_, waiter) in self.sync_waiters.drain(..) {
                let _ = waiter.send(SyncGroupResponse::default().with_error_code(ResponseError::RebalanceInProgress.code()));
            }
        } else {
            self.prepare_rebalance(false);
            self.maybe_complete_join(Instant::now());
        }
    }
}

/// Whether an OffsetCommit may be stored.
pub enum CommitCheck {
    Allowed,
    Refused(ResponseError),
}

pub struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
    streams: Arc<Streams>,
}

impl Coordinator {
    pub fn new(streams: Arc<Streams>) -> Coordinator {
        Coordinator { groups: Mutex::new(HashMap::new()), streams }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Kafka's rule: a member commits for its current generation; a client outside any
    /// group (generation -1, no member id) commits only while the group has no members.
    pub fn check_commit(&self, group_id: &str, member_id: &str, generation: i32) -> CommitCheck {
        let groups = self.lock();
        let Some(group) = groups.get(group_id) else {
            return if generation < 0 { CommitCheck::Allowed } else { CommitCheck::Refused(ResponseError::IllegalGeneration) };
        };
        if generation < 0 && member_id.is_empty() {
            return if group.members.is_empty() { CommitCheck::Allowed } else { CommitCheck::Refused(ResponseError::UnknownMemberId) };
        }
        if !group.members.contains_key(member_id) {
            return CommitCheck::Refused(ResponseError::UnknownMemberId);
        }
        if generation != group.generation {
            return CommitCheck::Refused(ResponseError::IllegalGeneration);
        }
        if group.state == State::CompletingRebalance {
            return CommitCheck::Refused(ResponseError::RebalanceInProgress);
        }
        CommitCheck::Allowed
    }

    /// Drops members whose session ran out and ends rebalances whose deadline passed.
    fn tick(&self) {
        let now = Instant::now();
        let mut groups = self.lock();
        for group in groups.values_mut() {
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|(_, m)| now.duration_since(m.last_seen) > m.session_timeout)
                .filter(|(id, _)| !group.join_waiters.iter().any(|(w, _)| w == *id))
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                tracing::info!(member = %id, "Kafka group member's session expired");
                group.remove_member(&id);
            }
            if group.state == State::CompletingRebalance && now >= group.rebalance_deadline {
                tracing::info!("Kafka group leader sent no assignment in time; rebalancing again");
                group.prepare_rebalance(false);
            }
            group.maybe_complete_join(now);
        }
        // Groups nobody is in are forgotten (their committed offsets stay in the catalog).
        groups.retain(|_, g| !(g.state == State::Empty && g.members.is_empty() && g.join_waiters.is_empty()));
    }
}

/// The coordinator's clock: runs for as long as the listener does.
pub async fn expire_members(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(EXPIRY_TICK);
    loop {
        tick.tick().await;
        broker.groups.tick();
    }
}

pub async fn find_coordinator(broker: &Broker, request: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let host = text(broker.advertised.ip().to_string());
    let port = broker.advertised.port() as i32;
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                find_coordinator_response::Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(BROKER_ID))
                    .with_host(host.clone())
                    .with_port(port)
            })
            .collect();
    } else {
        response.node_id = BrokerId(BROKER_ID);
        response.host = host;
        response.port = port;
    }
    response
}

/// `client_id` is the request header's, reported by DescribeGroups.
pub async fn join_group(broker: &Broker, request: JoinGroupRequest, version: i16, client_id: &str) -> JoinGroupResponse {
    let error = |code: ResponseError| JoinGroupResponse::default().with_error_code(code.code()).with_generation_id(-1);
    let group_id = request.group_id.0.as_str().to_string();
    if group_id.is_empty() {
        return error(ResponseError::InvalidGroupId);
    }
    let session_timeout = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
    if !(MIN_SESSION_TIMEOUT..=MAX_SESSION_TIMEOUT).contains(&session_timeout) {
        return error(ResponseError::InvalidSessionTimeout);
    }
    // Version 0 has no rebalance timeout: the session timeout serves.
    let rebalance_timeout = if version >= 1 { Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64) } else { session_timeout };
    let protocols: Vec<(String, Bytes)> = request.protocols.iter().map(|p| (p.name.as_str().to_string(), p.metadata.clone())).collect();
    if protocols.is_empty() {
        return error(ResponseError::InconsistentGroupProtocol);
    }
    let mut member_id = request.member_id.as_str().to_string();
    if member_id.is_empty() {
        member_id = format!("{}-{}", request.group_instance_id.as_ref().map_or("consumer", |g| g.as_str()), uuid::Uuid::new_v4());
        if version >= 4 {
            // KIP-394: the client must come back with the id we chose.
            let mut response = error(ResponseError::MemberIdRequired);
            response.member_id = text(member_id.as_str());
            return response;
        }
    }
    let receiver = {
        let mut groups = broker.groups.lock();
        let group = groups.entry(group_id.clone()).or_insert_with(|| Group::new(request.protocol_type.as_str()));
        if !group.members.is_empty() && group.protocol_type != request.protocol_type.as_str() {
            return error(ResponseError::InconsistentGroupProtocol);
        }
        if group.members.is_empty() {
            group.protocol_type = request.protocol_type.as_str().to_string();
        }
        if !group.members.contains_key(&member_id) && group.members.len() >= MAX_GROUP_MEMBERS {
            return error(ResponseError::GroupMaxSizeReached);
        }
        let initial = group.members.is_empty() && group.generation == 0;
        let now = Instant::now();
        let member = group.members.entry(member_id.clone()).or_insert_with(|| Member {
            client_id: String::new(),
            protocols: Vec::new(),
            session_timeout,
            rebalance_timeout,
            last_seen: now,
            assignment: Bytes::new(),
            joined: false,
        });
        member.protocols = protocols;
        member.session_timeout = session_timeout;
        member.rebalance_timeout = rebalance_timeout;
        member.last_seen = now;
        member.client_id = client_id.to_string();
        group.prepare_rebalance(initial);
        if let Some(m) = group.members.get_mut(&member_id) {
            m.joined = true;
        }
        // A member that sends JoinGroup again replaces its earlier wait.
        group.join_waiters.retain(|(id, _)| *id != member_id);
        let (tx, rx) = oneshot::channel();
        group.join_waiters.push((member_id.clone(), tx));
        group.maybe_complete_join(now);
        rx
    };
    match tokio::time::timeout(rebalance_timeout + MIN_SESSION_TIMEOUT, receiver).await {
        Ok(Ok(response)) => response,
        _ => error(ResponseError::RebalanceInProgress),
    }
}

pub async fn sync_group(broker: &Broker, request: SyncGroupRequest, _version: i16) -> SyncGroupResponse {
    let error = |code: ResponseError| SyncGroupResponse::default().with_error_code(code.code());
    let member_id = request.member_id.as_str().to_string();
    let receiver = {
        let mut groups = broker.groups.lock();
        let Some(group) = groups.get_mut(request.group_id.0.as_str()) else {
            return error(ResponseError::UnknownMemberId);
        };
        let Some(member) = group.members.get_mut(&member_id) else {
            return error(ResponseError::UnknownMemberId);
        };
        member.last_seen = Instant::now();
        if request.generation_id != group.generation {
            return error(ResponseError::IllegalGeneration);
        }
        let with_protocol = |mut r: SyncGroupResponse, group: &Group| {
            r.protocol_type = Some(text(group.protocol_type.as_str()));
            r.protocol_name = group.protocol.as_deref().map(text);
            r
        };
        match group.state {
            State::Empty | State::PreparingRebalance => return error(ResponseError::RebalanceInProgress),
            State::Stable => {
                let assignment = group.members[&member_id].assignment.clone();
                return with_protocol(SyncGroupResponse::default().with_assignment(assignment), group);
            }
            State::CompletingRebalance => {}
        }
        if group.leader.as_deref() == Some(member_id.as_str()) {
            for m in group.members.values_mut() {
                m.assignment = Bytes::new();
            }
            for a in &request.assignments {
                if let Some(m) = group.members.get_mut(a.member_id.as_str()) {
                    m.assignment = a.assignment.clone();
                }
            }
            group.state = State::Stable;
            for (id, waiter) in std::mem::take(&mut group.sync_waiters) {
                let assignment = group.members.get(&id).map(|m| m.assignment.clone()).unwrap_or_default();
                let _ = waiter.send(with_protocol(SyncGroupResponse::default().with_assignment(assignment), group));
            }
            let assignment = group.members[&member_id].assignment.clone();
            return with_protocol(SyncGroupResponse::default().with_assignment(assignment), group);
        }
        let (tx, rx) = oneshot::channel();
        group.sync_waiters.push((member_id.clone(), tx));
        rx
    };
    match tokio::time::timeout(MAX_SESSION_TIMEOUT, receiver).await {
        Ok(Ok(response)) => response,
        _ => error(ResponseError::RebalanceInProgress),
    }
}

pub async fn heartbeat(broker: &Broker, request: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
    let code = {
        let mut groups = broker.groups.lock();
        match groups.get_mut(request.group_id.0.as_str()) {
            None => ResponseError::UnknownMemberId.code(),
            Some(group) => {
                let generation = group.generation;
                let state = group.state;
                match group.members.get_mut(request.member_id.as_str()) {
                    None => ResponseError::UnknownMemberId.code(),
                    Some(m) => {
                        m.last_seen = Instant::now();
                        if request.generation_id != generation {
                            ResponseError::IllegalGeneration.code()
                        } else if state == State::PreparingRebalance {
                            ResponseError::RebalanceInProgress.code()
                        } else {
                            0
                        }
                    }
                }
            }
        }
    };
    HeartbeatResponse::default().with_error_code(code)
}

pub async fn leave_group(broker: &Broker, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let leaving: Vec<String> = if version >= 3 {
        request.members.iter().map(|m| m.member_id.as_str().to_string()).collect()
    } else {
        vec![request.member_id.as_str().to_string()]
    };
    let mut groups = broker.groups.lock();
    let Some(group) = groups.get_mut(request.group_id.0.as_str()) else {
        return LeaveGroupResponse::default().with_error_code(ResponseError::UnknownMemberId.code());
    };
    let mut members = Vec::new();
    let mut any_unknown = false;
    for id in leaving {
        let known = group.members.contains_key(&id);
        any_unknown |= !known;
        group.join_waiters.retain(|(w, _)| *w != id);
        group.remove_member(&id);
        let code = if known { 0 } else { ResponseError::UnknownMemberId.code() };
        members.push(MemberResponse::default().with_member_id(text(id.as_str())).with_error_code(code));
    }
    let mut response = LeaveGroupResponse::default();
    if version >= 3 {
        response.members = members;
    } else if any_unknown {
        response.error_code = ResponseError::UnknownMemberId.code();
    }
    response
}

pub async fn list_groups(broker: &Broker, _request: ListGroupsRequest, _version: i16) -> ListGroupsResponse {
    let mut listed: BTreeMap<String, (String, &'static str)> = BTreeMap::new();
    // Groups that only have committed offsets are listed too, as Kafka does.
    if let Ok(offsets) = broker.groups.streams.catalog().consumer_offsets(None).await {
        for o in offsets {
            listed.insert(o.group_id, ("consumer".to_string(), State::Empty.name()));
        }
    }
    for (id, group) in broker.groups.lock().iter() {
        listed.insert(id.clone(), (group.protocol_type.clone(), group.state.name()));
    }
    let groups = listed
        .into_iter()
        .map(|(id, (protocol_type, state))| {
            ListedGroup::default()
                .with_group_id(GroupId(text(id.as_str())))
                .with_protocol_type(text(protocol_type.as_str()))
                .with_group_state(text(state))
                .with_group_type(text("classic"))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub async fn describe_groups(broker: &Broker, request: DescribeGroupsRequest, _version: i16) -> DescribeGroupsResponse {
    let groups = broker.groups.lock();
    let described = request
        .groups
        .into_iter()
        .map(|id| match groups.get(id.0.as_str()) {
            None => DescribedGroup::default().with_group_id(id).with_group_state(text("Dead")),
            Some(group) => {
                let protocol = group.protocol.clone().unwrap_or_default();
                let members = group
                    .members
                    .iter()
                    .map(|(member_id, m)| {
                        let metadata = m.protocols.iter().find(|(n, _)| *n == protocol).map(|(_, md)| md.clone()).unwrap_or_default();
                        DescribedGroupMember::default()
                            .with_member_id(text(member_id))
                            .with_client_id(text(m.client_id.as_str()))
                            .with_member_metadata(metadata)
                            .with_member_assignment(m.assignment.clone())
                    })
                    .collect();
                DescribedGroup::default()
                    .with_group_id(id)
                    .with_group_state(text(group.state.name()))
                    .with_protocol_type(text(group.protocol_type.as_str()))
                    .with_protocol_data(text(protocol.as_str()))
                    .with_members(members)
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(described)
}
