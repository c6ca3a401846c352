//! The gate's metrics, through a recorder installed for this test only.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Behavior, Family, Result, Server, client, get_all, test_config};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use ratekeeper_http::{Gate, telemetry};

/// Every value recorded, by name and sorted labels.
#[derive(Debug, Default)]
struct Values {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

fn name(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

#[derive(Debug, Default, Clone)]
struct TestRecorder(Arc<Values>);

impl TestRecorder {
    fn cell(map: &Mutex<HashMap<String, Arc<AtomicU64>>>, key: &Key) -> Arc<AtomicU64> {
        Arc::clone(map.lock().unwrap().entry(name(key)).or_default())
    }

    fn get(map: &Mutex<HashMap<String, Arc<AtomicU64>>>, name: &str) -> Option<u64> {
        map.lock()
            .unwrap()
            .get(name)
            .map(|cell| cell.load(Ordering::Relaxed))
    }
}

/// Counts histogram samples rather than storing them.
#[derive(Debug)]
struct SampleCount(Arc<AtomicU64>);

impl metrics::HistogramFn for SampleCount {
    fn record(&self, _value: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(TestRecorder::cell(&self.0.counters, key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(TestRecorder::cell(&self.0.gauges, key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(SampleCount(TestRecorder::cell(&self.0.histograms, key))))
    }
}

#[test]
fn requests_waits_and_learned_limits_are_recorded() {
    let recorder = TestRecorder::default();
    // A runtime on this thread alone, so the thread-local recorder sees
    // every call.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (server, path) = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let path = "/metered";
            let server = Server::start(&[(
                path,
                Behavior::Limited {
                    limit: 5,
                    window: Duration::from_secs(1),
                    family: Family::Close,
                },
            )])
            .await;
            let gate = Arc::new(Gate::memory(&test_config()).unwrap());
            let results = get_all(&client(&gate), &server.url(path), 4, 2).await;
            assert!(results.iter().all(|result| *result == Result::Status(200)));
            (server, path)
        })
    });
    let endpoint = server.key(path);
    let values = &recorder.0;
    let requests = format!("{}{{endpoint={endpoint},status=200}}", telemetry::REQUESTS);
    assert_eq!(TestRecorder::get(&values.counters, &requests), Some(4));
    // A gauge holds an f64's bits.
    let limit = format!("{}{{endpoint={endpoint},source=header}}", telemetry::LIMIT);
    let limit = TestRecorder::get(&values.gauges, &limit).map(f64::from_bits);
    assert_eq!(limit, Some(5.0));
    let window = format!("{}{{endpoint={endpoint}}}", telemetry::WINDOW_SECONDS);
    assert_eq!(
        TestRecorder::get(&values.gauges, &window).map(f64::from_bits),
        Some(1.0)
    );
    // Later calls waited for their turn.
    let waits = format!("{}{{endpoint={endpoint}}}", telemetry::WAIT_SECONDS);
    assert!(TestRecorder::get(&values.histograms, &waits).is_some_and(|samples| samples >= 1));
}
