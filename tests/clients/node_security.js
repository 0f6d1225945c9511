// The official Node.js client (@elastic/elasticsearch 8.x) against a secured auspex: basic auth,
// API keys, 401 and 403.
//
// Usage: NODE_PATH=<folder with node_modules> node node_security.js http://127.0.0.1:PORT ELASTIC_PASSWORD
//
// Connects as `elastic` with basic auth, creates a `machine_learning_admin` user and an API key
// limited to ML monitoring, runs a small job through a client authenticated by each, and checks the
// refusals Elasticsearch would give. Prints `N passed, 0 failed` when every step passes.
'use strict'

const assert = require('node:assert/strict')
const { Client, errors } = require('@elastic/elasticsearch')

const [url, password] = process.argv.slice(2)
const connect = (auth) => new Client({ node: url, requestTimeout: 60000, auth })
const elastic = connect({ username: 'elastic', password })
const JOB = 'sec-node'
const START = 1403481600
let passed = 0

async function step (name, fn) {
  await fn()
  passed++
  console.log(`ok ${passed} - ${name}`)
}

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
  throw new Error(`expected a ${status} ${type}`)
}

async function main () {
  const state = {}
  await step('basic auth: authenticate as elastic', async () => {
    const who = await elastic.security.authenticate()
    assert.equal(who.username, 'elastic')
    assert.deepEqual(who.roles, ['superuser'])
  })

  await step('wrong password and no credentials are 401', async () => {
    const bad = connect({ username: 'elastic', password: 'not-the-password' })
    await expectError(401, 'security_exception', () => bad.ml.getJobs(), 'unable to authenticate user [elastic]')
    await expectError(401, 'security_exception', () => connect(undefined).ml.getJobs(), 'missing authentication credentials')
  })

  await step('the ML admin runs a job with basic auth', async () => {
    await elastic.security.putUser({ username: 'node-ml-admin', password: 'ml-admin-pw', roles: ['machine_learning_admin'] })
    const admin = connect({ username: 'node-ml-admin', password: 'ml-admin-pw' })
    await admin.ml.putJob({
      job_id: JOB,
      analysis_config: { bucket_span: '1h', detectors: [{ function: 'count' }] },
      data_description: { time_field: 'time', time_format: 'epoch' }
    })
    assert.equal((await admin.ml.openJob({ job_id: JOB })).opened, true)
    const docs = Array.from({ length: 12 }, (_, i) => ({ time: START + i * 600 }))
    await admin.ml.postData({ job_id: JOB, data: docs })
    assert.equal((await admin.ml.flushJob({ job_id: JOB })).flushed, true)
    await expectError(403, 'security_exception', () => admin.security.getUser({ username: 'elastic' }),
      'is unauthorized for user [node-ml-admin] with effective roles [machine_learning_admin]')
  })

  await step('an API key limited to ML monitoring reads but cannot write', async () => {
    const created = await elastic.security.createApiKey({
      name: 'node-reader',
      expiration: '1d',
      role_descriptors: { reader: { cluster: ['monitor_ml'] } }
    })
    state.key = created
    const reader = connect({ apiKey: created.encoded })
    assert.equal((await reader.ml.getJobs({ job_id: JOB })).count, 1)
    const stats = await reader.ml.getJobStats({ job_id: JOB })
    assert.equal(stats.jobs[0].data_counts.processed_record_count, 12)
    await expectError(403, 'security_exception', () => reader.ml.closeJob({ job_id: JOB }),
      `action [cluster:admin/xpack/ml/job/close] is unauthorized for API key id [${created.id}] of user [elastic]`)
    const byPair = connect({ apiKey: { id: created.id, api_key: created.api_key } })
    assert.equal((await byPair.ml.getJobs({ job_id: JOB })).count, 1)
  })

  await step('an invalidated API key is 401', async () => {
    const done = await elastic.security.invalidateApiKey({ ids: [state.key.id] })
    assert.deepEqual(done.invalidated_api_keys, [state.key.id])
    const reader = connect({ apiKey: state.key.encoded })
    await expectError(401, 'security_exception', () => reader.ml.getJobs({ job_id: JOB }))
  })

  await step('clean up', async () => {
    assert.equal((await elastic.ml.closeJob({ job_id: JOB })).closed, true)
    assert.equal((await elastic.ml.deleteJob({ job_id: JOB })).acknowledged, true)
    assert.equal((await elastic.security.deleteUser({ username: 'node-ml-admin' })).found, true)
  })

  console.log(`${passed} passed, 0 failed`)
}

main().catch((error) => {
  console.error(error && error.meta ? JSON.stringify(error.meta.body) : '', error)
  process.exit(1)
})
