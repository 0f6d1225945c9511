// The whole anomaly-detection workflow through the official Node.js client (@elastic/elasticsearch
// 8.x), against a running auspex.
//
// Usage: NODE_PATH=<folder with node_modules> node node_workflow.js http://127.0.0.1:PORT
//
// The 8.x JS client sends flush/results parameters in a JSON body (results as POST), posts `_data`
// as NDJSON, and checks `X-Elastic-Product` on every 2xx answer. Every step asserts what comes back;
// the script exits non-zero on the first failure and prints `N passed, 0 failed` at the end.
'use strict'

const assert = require('node:assert/strict')
const { Client, errors } = require('@elastic/elasticsearch')

const client = new Client({ node: process.argv[2], requestTimeout: 60000 })
const ml = client.ml
const JOB = 'node-flights'
const OTHER = 'node-other'
const START = 1403481600
const HOUR = 3600
let passed = 0

function records (fromHour, hours, spikeHour) {
  const out = []
  for (let hour = fromHour; hour < fromHour + hours; hour++) {
    for (let k = 0; k < 6; k++) {
      ['AAL', 'JZA', 'KLM'].forEach((airline, a) => {
        let value = 100 + ((hour * 31 + k * 7 + a * 13) % 17)
        if (hour === spikeHour && airline === 'JZA') value = 5000
        out.push({ time: START + hour * HOUR + k * 600 + a, airline, responsetime: value })
      })
    }
  }
  return out
}

const ms = (hours) => (START + hours * HOUR) * 1000

async function expectError (status, type, fn, reasonPart) {
  try {
    await fn()
  } catch (error) {
    assert.ok(error instanceof errors.ResponseError, String(error))
    assert.equal(error.meta.statusCode, status, JSON.stringify(error.meta.body))
    assert.equal(error.meta.body.error.type, type)
    if (reasonPart) assert.ok(error.meta.body.error.reason.includes(reasonPart), error.meta.body.error.reason)
    return
  }
  assert.fail(`expected a ${status} ${type}`)
}

async function step (name, fn) {
  await fn()
  passed += 1
  console.log(`ok ${passed} - ${name}`)
}

async function main () {
  for (const job of [JOB, OTHER]) {
    await ml.deleteJob({ job_id: job, force: true }).catch(() => {})
  }

  await step('server info', async () => {
    const info = await client.info()
    assert.ok(info.version.number.startsWith('8.'))
  })

  await step('put job', async () => {
    const job = await ml.putJob({
      job_id: JOB,
      analysis_config: {
        bucket_span: '1h',
        detectors: [{ function: 'mean', field_name: 'responsetime', by_field_name: 'airline' }],
        influencers: ['airline']
      },
      data_description: { time_field: 'time', time_format: 'epoch' },
      groups: ['clients']
    })
    assert.equal(job.job_id, JOB)
    assert.equal(job.analysis_config.detectors[0].detector_description, 'mean(responsetime) by airline')
  })

  await step('validate, estimate, info', async () => {
    assert.equal((await ml.validate({ analysis_config: { detectors: [{ function: 'count' }] }, data_description: {} })).acknowledged, true)
    assert.equal((await ml.validateDetector({ detector: { function: 'max', field_name: 'x' } })).acknowledged, true)
    await expectError(400, 'illegal_argument_exception',
      () => ml.validateDetector({ detector: { function: 'nope' } }), "Unknown function 'nope'")
    const estimate = await ml.estimateModelMemory({
      analysis_config: {
        bucket_span: '5m',
        detectors: [{ function: 'sum', field_name: 'bytes', by_field_name: 'status', partition_field_name: 'app' }],
        influencers: ['source_ip', 'dest_ip']
      },
      overall_cardinality: { status: 10, app: 50 },
      max_bucket_cardinality: { source_ip: 300, dest_ip: 30 }
    })
    assert.equal(estimate.model_memory_estimate, '21mb')
    assert.equal((await ml.info()).defaults.anomaly_detectors.daily_model_snapshot_retention_after_days, 1)
  })

  await step('open, post data (NDJSON)', async () => {
    assert.equal((await ml.openJob({ job_id: JOB })).opened, true)
    const counts = await ml.postData({ job_id: JOB, data: records(0, 24) })
    assert.equal(counts.processed_record_count, 24 * 18)
  })

  await step('flush with each parameter', async () => {
    const plain = await ml.flushJob({ job_id: JOB })
    assert.equal(plain.last_finalized_bucket_end, ms(23))
    await ml.flushJob({ job_id: JOB, calc_interim: true, start: String(START + 23 * HOUR), end: String(START + 24 * HOUR) })
    const interim = await ml.getBuckets({ job_id: JOB, start: String(START + 23 * HOUR) })
    assert.equal(interim.count, 1)
    assert.equal(interim.buckets[0].is_interim, true)
    const advanced = await ml.flushJob({ job_id: JOB, advance_time: String(START + 24 * HOUR) })
    assert.equal(advanced.last_finalized_bucket_end, ms(24))
    const skipped = await ml.flushJob({ job_id: JOB, skip_time: String(START + 26 * HOUR) })
    assert.equal(skipped.last_finalized_bucket_end, ms(26))
    const second = await ml.postData({ job_id: JOB, data: records(26, 24, 40) })
    // Each `_data` answer holds the counts of that upload alone (ES's incremental stats).
    assert.equal(second.processed_record_count, 24 * 18)
    assert.equal(second.earliest_record_timestamp, undefined)
    await ml.flushJob({ job_id: JOB, advance_time: String(START + 50 * HOUR) })
  })

  await step('results with filters, sort and paging', async () => {
    const all = await ml.getBuckets({ job_id: JOB, exclude_interim: true })
    assert.equal(all.count, 48)
    const page = await ml.getBuckets({ job_id: JOB, page: { from: 1, size: 2 }, desc: true })
    assert.equal(page.buckets.length, 2)
    assert.ok(page.buckets[0].timestamp > page.buckets[1].timestamp)
    const top = await ml.getBuckets({ job_id: JOB, sort: 'anomaly_score', desc: true, expand: true, anomaly_score: 1 })
    assert.equal(top.buckets[0].timestamp, ms(40))
    assert.ok(top.buckets[0].records.length > 0)
    const recs = await ml.getRecords({ job_id: JOB, record_score: 1, page: { size: 3 } })
    assert.equal(recs.records[0].by_field_value, 'JZA')
    const infl = await ml.getInfluencers({ job_id: JOB, influencer_score: 1, sort: 'influencer_score', desc: true, page: { size: 3 } })
    assert.equal(infl.influencers[0].influencer_field_value, 'JZA')
    assert.equal(infl.influencers[0].airline, 'JZA')
    assert.equal(infl.influencers[0].timestamp, ms(40))
  })

  await step('stats', async () => {
    const stats = (await ml.getJobStats({ job_id: JOB })).jobs[0]
    assert.equal(stats.state, 'opened')
    assert.equal(stats.data_counts.processed_record_count, 48 * 18)
  })

  await step('overall buckets', async () => {
    await ml.putJob({
      job_id: OTHER,
      analysis_config: { bucket_span: '2h', detectors: [{ function: 'count' }] },
      data_description: { time_field: 'time', time_format: 'epoch' },
      groups: ['clients']
    })
    const overall = await ml.getOverallBuckets({ job_id: `${JOB},${OTHER}`, top_n: 1, overall_score: 50 })
    assert.ok(overall.overall_buckets.some(b => b.timestamp === ms(40)), JSON.stringify(overall))
    assert.ok(overall.overall_buckets.every(b => b.bucket_span === 7200 && b.overall_score >= 50))
    await expectError(400, 'illegal_argument_exception',
      () => ml.getOverallBuckets({ job_id: 'clients', bucket_span: '1h' }), 'must be greater or equal')
  })

  await step('close; snapshots list, update, revert, delete', async () => {
    assert.equal((await ml.closeJob({ job_id: JOB })).closed, true)
    const first = (await ml.getModelSnapshots({ job_id: JOB })).model_snapshots[0]
    assert.match(first.description, /^State persisted due to job close at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/)
    const updated = await ml.updateModelSnapshot({ job_id: JOB, snapshot_id: first.snapshot_id, description: 'kept', retain: true })
    assert.equal(updated.model.description, 'kept')
    await ml.openJob({ job_id: JOB })
    await ml.postData({ job_id: JOB, data: records(50, 4, 52) })
    await expectError(409, 'status_exception',
      () => ml.revertModelSnapshot({ job_id: JOB, snapshot_id: first.snapshot_id }), 'when the job is closed')
    await ml.closeJob({ job_id: JOB })
    const listed = await ml.getModelSnapshots({ job_id: JOB, sort: 'timestamp', desc: true })
    assert.equal(listed.count, 2)
    assert.equal(listed.model_snapshots[1].snapshot_id, first.snapshot_id)
    const paged = await ml.getModelSnapshots({ job_id: JOB, page: { from: 1, size: 1 } })
    assert.equal(paged.count, 2)
    assert.equal(paged.model_snapshots[0].snapshot_id, first.snapshot_id)
    const reverted = await ml.revertModelSnapshot({ job_id: JOB, snapshot_id: first.snapshot_id, delete_intervening_results: true })
    assert.equal(reverted.model.snapshot_id, first.snapshot_id)
    assert.equal((await ml.getBuckets({ job_id: JOB, start: String(START + 50 * HOUR) })).count, 0)
    const stats = (await ml.getJobStats({ job_id: JOB })).jobs[0]
    assert.equal(stats.data_counts.processed_record_count, 48 * 18)
    await expectError(400, 'illegal_argument_exception',
      () => ml.deleteModelSnapshot({ job_id: JOB, snapshot_id: first.snapshot_id }), 'active snapshot')
    const newest = listed.model_snapshots[0].snapshot_id
    assert.equal((await ml.deleteModelSnapshot({ job_id: JOB, snapshot_id: newest })).acknowledged, true)
    await expectError(404, 'resource_not_found_exception',
      () => ml.getModelSnapshots({ job_id: JOB, snapshot_id: newest }), 'No model snapshot with id')
  })

  await step('filters and calendars', async () => {
    await ml.deleteFilter({ filter_id: 'node-safe' }).catch(() => {})
    await ml.deleteCalendar({ calendar_id: 'node-outages' }).catch(() => {})
    const filter = await ml.putFilter({ filter_id: 'node-safe', description: 'safe', items: ['b', 'a'] })
    assert.deepEqual(filter.items, ['a', 'b'])
    const updated = await ml.updateFilter({ filter_id: 'node-safe', add_items: ['c'], remove_items: ['a'] })
    assert.deepEqual(updated.items, ['b', 'c'])
    assert.equal((await ml.getFilters({ filter_id: 'node-safe' })).count, 1)
    await ml.deleteFilter({ filter_id: 'node-safe' })
    const calendar = await ml.putCalendar({ calendar_id: 'node-outages', job_ids: ['clients'], description: 'planned' })
    assert.deepEqual(calendar.job_ids, ['clients'])
    const posted = await ml.postCalendarEvents({
      calendar_id: 'node-outages',
      events: [{ description: 'window', start_time: ms(60), end_time: ms(61) }]
    })
    assert.equal(posted.events[0].calendar_id, 'node-outages')
    const events = await ml.getCalendarEvents({ calendar_id: 'node-outages', job_id: JOB })
    assert.equal(events.count, 1)
    assert.equal(events.events[0].start_time, ms(60))
    await ml.deleteCalendarEvent({ calendar_id: 'node-outages', event_id: posted.events[0].event_id })
    assert.equal((await ml.getCalendars({ calendar_id: 'node-outages' })).calendars[0].description, 'planned')
    await ml.deleteCalendar({ calendar_id: 'node-outages' })
    await expectError(404, 'resource_not_found_exception', () => ml.getCalendars({ calendar_id: 'node-outages' }))
  })

  await step('update job, cat, expired data, reset, delete', async () => {
    const job = await ml.updateJob({ job_id: JOB, description: 'updated', model_snapshot_retention_days: 20 })
    assert.equal(job.description, 'updated')
    assert.equal(job.model_snapshot_retention_days, 20)
    const rows = await client.cat.mlJobs({ format: 'json', h: 'id,state,dpr', s: 'id' })
    const row = rows.find(r => r.id === JOB)
    assert.equal(row.state, 'closed')
    assert.equal(row['data.processed_records'], String(48 * 18))
    assert.equal((await ml.deleteExpiredData({ job_id: JOB })).deleted, true)
    assert.equal((await ml.resetJob({ job_id: JOB })).acknowledged, true)
    assert.equal((await ml.getBuckets({ job_id: JOB })).count, 0)
    for (const id of [JOB, OTHER]) {
      assert.equal((await ml.deleteJob({ job_id: id })).acknowledged, true)
    }
    await expectError(404, 'resource_not_found_exception', () => ml.getJobs({ job_id: JOB }), `No known job with id '${JOB}'`)
  })

  console.log(`${passed} passed, 0 failed`)
}

main().catch((error) => {
  console.error(error && error.meta ? JSON.stringify(error.meta.body) : '', error)
  process.exit(1)
})
