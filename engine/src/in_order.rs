//! The one timely operator behind weir's stateless steps (`map`, `filter`, `flat_map`,
//! `inspect` and the exchange of `key_by`): it handles input batches one by one, in the order
//! they arrive.
//!
//! timely's own `map`, `filter` and `exchange` first group an activation's batches by
//! timestamp (an unstable sort). weir's records of one stream carry different timestamps (the
//! watermark part differs between the upstream workers a keyed operator hears from), so that
//! grouping can move a key's later change ahead of an earlier one: a changelog `+a, -a +b`
//! could reach the sink as `-a +b, +a`. timely's channels are FIFO between any two workers,
//! so handling batches in arrival order keeps every key's records in the order the keyed
//! operator that produced them emitted them, all the way to the sink.

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::ParallelizationContract;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

use crate::time::Time;

/// Applies `logic` to each input batch in arrival order: `logic` takes the batch's records
/// and leaves its output in the second vector (empty when called), which goes out with the
/// batch's time. Steps that keep the record type can filter or change the batch in place and
/// swap it into the output.
pub(crate) fn each_batch<'s, T, U, P>(
    stream: StreamVec<'s, Time, T>,
    pact: P,
    name: &str,
    mut logic: impl FnMut(&mut Vec<T>, &mut Vec<U>) + 'static,
) -> StreamVec<'s, Time, U>
where
    T: 'static,
    U: Clone + 'static,
    P: ParallelizationContract<Time, Vec<T>>,
{
    stream.unary::<CapacityContainerBuilder<Vec<U>>, _, _, _>(pact, name, move |_, _| {
        let mut output_batch = Vec::new();
        move |input, output| {
            input.for_each(|capability, records| {
                logic(records, &mut output_batch);
                if !output_batch.is_empty() {
                    output
                        .session(&capability)
                        .give_container(&mut output_batch);
                    output_batch.clear();
                }
            });
        }
    })
}
