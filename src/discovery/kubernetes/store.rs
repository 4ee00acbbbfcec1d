//! What the list+watch streams of one discoverer have found, and the target groups built from
//! it: the role-independent half of the watch machinery (the other half, the streams
//! themselves, is in the parent module).
//!
//! Each stream (one kind in one namespace, or cluster-wide) feeds [`State::apply`] with
//! kube-runtime watcher events. Objects are kept by kind, namespace and name (as Prometheus'
//! informer stores key them); a list in progress is buffered and replaces everything its
//! stream had found when it completes, so objects deleted while no watch was open go away.
//!
//! Invariants:
//! - The groups of an object of the role's own kind are rebuilt whenever it, or an object it
//!   reads, changes: the endpoints roles read the service and the pods they reference (even
//!   before those exist, so their arrival is noticed), the other roles read nothing else. The
//!   published groups therefore always equal a fresh conversion of the current objects.
//! - [`State::groups`] is ordered by source, then by target order within an object.
//! - Nothing here panics on what the API server sends.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher::Event;

use super::endpoints::{endpoints_dependencies, endpoints_groups, endpoints_source};
use super::endpointslice::{
    endpointslice_dependencies, endpointslice_groups, endpointslice_source, service_name,
};
use super::ingress::{ingress_groups, ingress_source};
use super::meta::namespace_and_name;
use super::node::{node_groups, node_source};
use super::pod::{pod_groups, pod_source};
use super::service::{service_groups, service_source};
use super::settings::Role;
use crate::discovery::TargetGroup;

/// An object's identity: its kind, namespace (empty for nodes) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The kind, named by the role that discovers it.
    pub kind: Role,
    /// The namespace; empty for cluster-scoped kinds.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `kind`/`namespace`/`name`.
    pub fn new(kind: Role, namespace: &str, name: &str) -> Self {
        ObjectKey {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// One watched object of any kind a role reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// A pod.
    Pod(Box<Pod>),
    /// A node.
    Node(Box<Node>),
    /// A service.
    Service(Box<Service>),
    /// An endpoints object.
    Endpoints(Box<Endpoints>),
    /// An endpoint slice (`discovery.k8s.io/v1`).
    EndpointSlice(Box<EndpointSlice>),
    /// An ingress (`networking.k8s.io/v1`).
    Ingress(Box<Ingress>),
}

impl Object {
    fn kind(&self) -> Role {
        match self {
            Object::Pod(_) => Role::Pod,
            Object::Node(_) => Role::Node,
            Object::Service(_) => Role::Service,
            Object::Endpoints(_) => Role::Endpoints,
            Object::EndpointSlice(_) => Role::EndpointSlice,
            Object::Ingress(_) => Role::Ingress,
        }
    }

    fn meta(&self) -> &ObjectMeta {
        match self {
            Object::Pod(o) => &o.metadata,
            Object::Node(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Endpoints(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::Ingress(o) => &o.metadata,
        }
    }

    /// Its key (a namespace sent for a node is ignored).
    pub fn key(&self) -> ObjectKey {
        let (namespace, name) = namespace_and_name(self.meta());
        let namespace = if self.kind() == Role::Node {
            ""
        } else {
            namespace
        };
        ObjectKey::new(self.kind(), namespace, name)
    }
}

/// The source of the groups of the object `key` (of a role's own kind).
fn source(key: &ObjectKey) -> String {
    let (ns, name) = (key.namespace.as_str(), key.name.as_str());
    match key.kind {
        Role::Pod => pod_source(ns, name),
        Role::Node => node_source(name),
        Role::Service => service_source(ns, name),
        Role::Endpoints => endpoints_source(ns, name),
        Role::EndpointSlice => endpointslice_source(ns, name),
        Role::Ingress => ingress_source(ns, name),
    }
}

/// Every object the streams know.
#[derive(Default)]
struct Objects(HashMap<ObjectKey, Object>);

impl Objects {
    fn pod(&self, namespace: &str, name: &str) -> Option<&Pod> {
        match self.0.get(&ObjectKey::new(Role::Pod, namespace, name)) {
            Some(Object::Pod(p)) => Some(p),
            _ => None,
        }
    }

    fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        match self.0.get(&ObjectKey::new(Role::Service, namespace, name)) {
            Some(Object::Service(s)) => Some(s),
            _ => None,
        }
    }

    /// The groups of `object` and the keys of the other objects they were built from.
    fn build(&self, object: &Object) -> (Vec<TargetGroup>, Vec<ObjectKey>) {
        let pod = |ns: &str, name: &str| self.pod(ns, name);
        match object {
            Object::Pod(p) => (pod_groups(p), Vec::new()),
            Object::Node(n) => (node_groups(n), Vec::new()),
            Object::Service(s) => (service_groups(s), Vec::new()),
            Object::Ingress(i) => (ingress_groups(i), Vec::new()),
            Object::Endpoints(e) => {
                let (ns, name) = namespace_and_name(&e.metadata);
                let groups = endpoints_groups(e, self.service(ns, name), &pod);
                (groups, endpoints_dependencies(e))
            }
            Object::EndpointSlice(s) => {
                let (ns, _) = namespace_and_name(&s.metadata);
                let svc = service_name(s).and_then(|name| self.service(ns, name));
                let groups = endpointslice_groups(s, svc, &pod);
                (groups, endpointslice_dependencies(s))
            }
        }
    }
}

/// What one stream has reported.
#[derive(Default)]
struct Stream {
    /// The keys of the objects it found.
    keys: BTreeSet<ObjectKey>,
    /// The objects of a list in progress; they replace `keys`' objects when it completes.
    relist: Option<BTreeMap<ObjectKey, Object>>,
    /// Whether its first list has completed.
    listed: bool,
}

/// The objects and groups of one discoverer.
pub struct State {
    role: Role,
    streams: Vec<Stream>,
    objects: Objects,
    /// The groups of each object of the role's kind that has targets, by source.
    groups: BTreeMap<String, Vec<TargetGroup>>,
    /// For each object read by other objects' groups, the objects that read it.
    readers: HashMap<ObjectKey, BTreeSet<ObjectKey>>,
    /// For each object of the role's kind, what its groups were built from.
    reads: HashMap<ObjectKey, Vec<ObjectKey>>,
}

impl State {
    /// The state of a `role` discoverer fed by `streams` streams.
    pub fn new(role: Role, streams: usize) -> Self {
        State {
            role,
            streams: (0..streams).map(|_| Stream::default()).collect(),
            objects: Objects::default(),
            groups: BTreeMap::new(),
            readers: HashMap::new(),
            reads: HashMap::new(),
        }
    }

    /// Applies one watcher event of stream `i`; true when the published list changed (and
    /// always at the end of a stream's list, so that the first publication can happen).
    pub fn apply(&mut self, i: usize, event: Event<Object>) -> bool {
        let Some(s) = self.streams.get_mut(i) else {
            return false;
        };
        let mut changed = Vec::new();
        match event {
            Event::Init => {
                s.relist = Some(BTreeMap::new());
                return false;
            }
            Event::InitApply(o) => {
                s.relist
                    .get_or_insert_with(BTreeMap::new)
                    .insert(o.key(), o);
                return false;
            }
            Event::InitDone => {
                let listed = s.relist.take().unwrap_or_default();
                for key in &s.keys {
                    if !listed.contains_key(key) && self.objects.0.remove(key).is_some() {
                        changed.push(key.clone());
                    }
                }
                s.keys = listed.keys().cloned().collect();
                for (key, o) in listed {
                    if self.objects.0.get(&key) != Some(&o) {
                        self.objects.0.insert(key.clone(), o);
                        changed.push(key);
                    }
                }
                s.listed = true;
                self.rebuild(changed);
                return true;
            }
            Event::Apply(o) => {
                let key = o.key();
                if self.objects.0.get(&key) != Some(&o) {
                    s.keys.insert(key.clone());
                    self.objects.0.insert(key.clone(), o);
                    changed.push(key);
                }
            }
            Event::Delete(o) => {
                let key = o.key();
                s.keys.remove(&key);
                if self.objects.0.remove(&key).is_some() {
                    changed.push(key);
                }
            }
        }
        let listed = s.listed;
        self.rebuild(changed) && listed
    }

    /// Whether every stream has completed its first list.
    pub fn all_listed(&self) -> bool {
        self.streams.iter().all(|s| s.listed)
    }

    /// Every object's groups, ordered by source, then in target order.
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.groups.values().flatten().cloned().collect()
    }

    /// Rebuilds the groups of the changed objects of the role's kind and of every object
    /// that reads a changed object; true when any group changed.
    fn rebuild(&mut self, changed: Vec<ObjectKey>) -> bool {
        let mut todo = BTreeSet::new();
        for key in changed {
            if let Some(readers) = self.readers.get(&key) {
                todo.extend(readers.iter().cloned());
            }
            if key.kind == self.role {
                todo.insert(key);
            }
        }
        let mut any = false;
        for key in todo {
            any |= self.rebuild_one(key);
        }
        any
    }

    /// Rebuilds the groups of `key`; true when they changed.
    fn rebuild_one(&mut self, key: ObjectKey) -> bool {
        for read in self.reads.remove(&key).into_iter().flatten() {
            if let Some(readers) = self.readers.get_mut(&read) {
                readers.remove(&key);
                if readers.is_empty() {
                    self.readers.remove(&read);
                }
            }
        }
        let source = source(&key);
        let Some(object) = self.objects.0.get(&key) else {
            return self.groups.remove(&source).is_some();
        };
        let (groups, reads) = self.objects.build(object);
        let changed = self
            .groups
            .get(&source)
            .map_or(!groups.is_empty(), |g| *g != groups);
        if groups.is_empty() {
            self.groups.remove(&source);
        } else if changed {
            self.groups.insert(source, groups);
        }
        for read in &reads {
            self.readers
                .entry(read.clone())
                .or_default()
                .insert(key.clone());
        }
        if !reads.is_empty() {
            self.reads.insert(key, reads);
        }
        changed
    }
}
