/**
 * Moves cut short, on a real fleet: a host killed (SIGKILL) or the controller stopped at a chosen
 * step. Whatever the step, at most one copy of the tenant serves meanwhile and exactly one once the
 * move is resumed or rolled back, and nothing acknowledged before the move is lost.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ControllerStopped } from '../../host/fleet/controller.ts';
import type { MoveRecord, MoveStep } from '../../host/fleet/journal.ts';
import { within } from '../helpers/deadline.ts';
import { startTestFleet, type TestFleet } from '../helpers/fleet.ts';
import { eventually } from '../helpers/wait.ts';

let fleet: TestFleet;
/** What to do when a move of `tenant` has recorded `step`. */
let fault: { tenant: string; step: MoveStep; act: (move: MoveRecord) => Promise<void> } | undefined;

test.before(async () => {
  fleet = await startTestFleet();
  await fleet.fleet.reopenController(hook);
});
test.after(async () => {
  await fleet?.stop();
});

async function hook(move: MoveRecord): Promise<void> {
  if (fault === undefined || fault.tenant !== move.tenant || fault.step !== move.step) return;
  const act = fault.act;
  fault = undefined;
  await act(move);
}

type Tenant = { id: string; apiKey: string; host: string };
const DOCS = [
  { id: 'hours', title: 'Hours', text: 'The workshop opens at nine and closes at six.' },
  { id: 'tyres', title: 'Tyres', text: 'Tubeless tyres are fitted while you wait.' },
];

async function tenantWithData(name: string): Promise<Tenant> {
  const created = await within(fleet.fleet.controller.createTenant(name), `create ${name}`, 30_000);
  const tenant = { id: created.tenant.id, apiKey: created.apiKey, host: created.host };
  assert.is((await fleet.request('POST', '/v1/documents', tenant.apiKey, { documents: DOCS })).status, 200);
  return tenant;
}

const otherHost = (host: string): string => fleet.fleet.hosts.map((candidate) => candidate.name).find((name) => name !== host) as string;

async function documentIds(tenant: Tenant): Promise<string[]> {
  const answer = await fleet.request('GET', '/v1/documents', tenant.apiKey);
  assert.is(answer.status, 200, `the tenant's documents are readable through the router: ${JSON.stringify(answer.body)}`);
  return answer.body.documents.map((document: { id: string }) => document.id).sort();
}

async function failedMove(tenant: Tenant, to: string): Promise<{ code: string; move: MoveRecord }> {
  const code = await fleet.fleet.controller.moveTenant(tenant.id, to).then(
    () => 'done',
    (error: { code?: string; name?: string }) => error.code ?? error.name ?? 'error',
  );
  const move = fleet.fleet.controller.activeMoves().find((candidate) => candidate.tenant === tenant.id);
  assert.ok(move !== undefined, 'the move stays in the journal');
  return { code, move };
}

test('target killed after the pre-copy: the source still serves (frozen, never retired); rollback makes it writable; the target\'s copy is cleaned once it is back', async () => {
  const tenant = await tenantWithData('Target Dies');
  const target = otherHost(tenant.host);
  fault = { tenant: tenant.id, step: 'precopied', act: () => fleet.fleet.host(target).kill() };
  const { code, move } = await failedMove(tenant, target);
  assert.is(code, 'FLEET_HOST_UNAVAILABLE');
  assert.is(move.step, 'imported', 'the source is frozen; it is not retired while the target does not answer');
  assert.equal(await fleet.servingCopies(tenant.id), [tenant.host], 'one serving copy: the source');
  assert.equal(await documentIds(tenant), ['hours', 'tyres'], 'reads go on');
  const frozen = await fleet.request('POST', '/v1/documents', tenant.apiKey, { documents: [{ id: 'later', text: 'Written after the rollback.' }] });
  assert.equal([frozen.status, frozen.body.error.code], [503, 'TENANT_FROZEN']);

  const rolledBack = await fleet.fleet.controller.rollback(move.id);
  assert.equal([rolledBack.step, rolledBack.cleanup], ['rolled-back', [target]], 'the target was down: its copy is listed for cleaning');
  assert.is((await fleet.request('POST', '/v1/documents', tenant.apiKey, { documents: [{ id: 'later', text: 'Written after the rollback.' }] })).status, 200);

  await within(fleet.fleet.host(target).start(), 'the target restarts', 180_000);
  const cleaned = await fleet.fleet.controller.resume(move.id);
  assert.equal(cleaned.cleanup, []);
  assert.equal((await fleet.hostRequest(target, 'GET', `/v1/tenants/${tenant.id}/fleet`)).body.state, 'absent');
  await eventually(async () => (await fleet.fleet.router.serverStates()).every((state) => state.status === 'UP'), 'the router sees the target again', 30_000);

  const again = await within(fleet.fleet.controller.moveTenant(tenant.id, target), 'the move, again', 120_000);
  assert.is(again.step, 'done');
  assert.equal(await fleet.servingCopies(tenant.id), [target]);
  assert.equal(await documentIds(tenant), ['hours', 'later', 'tyres'], 'everything written arrived');
});

test('source killed once frozen: no copy serves while it is down, the freeze survives its restart, and the move resumes', async () => {
  const tenant = await tenantWithData('Source Dies Frozen');
  const target = otherHost(tenant.host);
  fault = { tenant: tenant.id, step: 'imported', act: () => fleet.fleet.host(tenant.host).kill() };
  const { code, move } = await failedMove(tenant, target);
  assert.is(code, 'FLEET_HOST_UNAVAILABLE');
  assert.is(move.step, 'imported');
  assert.equal(await fleet.servingCopies(tenant.id), [], 'the only copy is on the host that is down');
  const onTarget = (await fleet.hostRequest(target, 'GET', `/v1/tenants/${tenant.id}/fleet`)).body;
  assert.ok(onTarget.state === 'absent' || onTarget.state === 'incoming', `nothing serves on the target: ${JSON.stringify(onTarget)}`);

  await within(fleet.fleet.host(tenant.host).start(), 'the source restarts', 180_000);
  assert.equal((await fleet.hostRequest(tenant.host, 'GET', `/v1/tenants/${tenant.id}/fleet`)).body.state, 'frozen', 'the freeze is in the registry: a restart keeps it');
  assert.equal(await fleet.servingCopies(tenant.id), [tenant.host]);
  await eventually(async () => (await fleet.fleet.router.serverStates()).every((state) => state.status === 'UP'), 'the router sees the source again', 30_000);
  const resumed = await within(fleet.fleet.controller.resume(move.id), 'the resumed move', 120_000);
  assert.is(resumed.step, 'done');
  assert.equal(await fleet.servingCopies(tenant.id), [target]);
  assert.equal(await documentIds(tenant), ['hours', 'tyres']);
});

test('source killed before the freeze: after its restart it writes again; the resumed move sees the pre-copy is stale and pre-copies again', async () => {
  const tenant = await tenantWithData('Source Dies Early');
  const target = otherHost(tenant.host);
  fault = { tenant: tenant.id, step: 'precopied', act: () => fleet.fleet.host(tenant.host).kill() };
  const { code, move } = await failedMove(tenant, target);
  assert.equal([code, move.step], ['FLEET_HOST_UNAVAILABLE', 'precopied']);
  assert.equal(await fleet.servingCopies(tenant.id), [], 'the pre-copy on the target serves nothing');
  await within(fleet.fleet.host(tenant.host).start(), 'the source restarts', 180_000);
  await eventually(async () => (await fleet.fleet.router.serverStates()).every((state) => state.status === 'UP'), 'the router sees the source again', 30_000);
  assert.equal(await fleet.servingCopies(tenant.id), [tenant.host]);
  assert.is((await fleet.request('POST', '/v1/documents', tenant.apiKey, { documents: [{ id: 'after', text: 'Written after the restart.' }] })).status, 200, 'never frozen: it writes');
  const resumed = await within(fleet.fleet.controller.resume(move.id), 'the resumed move', 120_000);
  assert.equal([resumed.step, resumed.precopyRounds, resumed.precopyKept], ['done', 2, true], 'another process wrote (or might have): copied again before the freeze');
  assert.equal(await fleet.servingCopies(tenant.id), [target]);
  assert.equal(await documentIds(tenant), ['after', 'hours', 'tyres']);
});

test('source killed once retired: the target takes over, and the shred finishes when the source is back', async () => {
  const tenant = await tenantWithData('Source Dies Late');
  const target = otherHost(tenant.host);
  fault = { tenant: tenant.id, step: 'retired', act: () => fleet.fleet.host(tenant.host).kill() };
  const { code, move } = await failedMove(tenant, target);
  assert.is(code, 'FLEET_HOST_UNAVAILABLE');
  assert.is(move.step, 'routed', 'activated and routed; only the shred waits for the source');
  assert.equal(await fleet.servingCopies(tenant.id), [target]);
  assert.equal(await documentIds(tenant), ['hours', 'tyres'], 'the target serves everything');
  assert.is((await fleet.request('POST', '/v1/documents', tenant.apiKey, { documents: [{ id: 'new', text: 'Written on the target.' }] })).status, 200, 'and takes writes');

  await within(fleet.fleet.host(tenant.host).start(), 'the source restarts', 180_000);
  const old = (await fleet.hostRequest(tenant.host, 'GET', `/v1/tenants/${tenant.id}/fleet`)).body;
  assert.equal([old.state, old.hasData], ['moved', true], 'the restarted source refuses the tenant (its copy is retired)');
  assert.equal(await fleet.servingCopies(tenant.id), [target], 'still exactly one serving copy');
  const resumed = await within(fleet.fleet.controller.resume(move.id), 'the resumed move', 60_000);
  assert.is(resumed.step, 'done');
  assert.is((await fleet.hostRequest(tenant.host, 'GET', `/v1/tenants/${tenant.id}/fleet`)).body.hasData, false, 'the old copy is shredded');
  await eventually(async () => (await fleet.fleet.router.serverStates()).every((state) => state.status === 'UP'), 'the router sees the source again', 30_000);
});

test('controller stopped mid-move: a new controller finds the move in its journal and resumes it; past the point of no return, recover() does', async () => {
  const early = await tenantWithData('Controller Dies Early');
  const earlyTarget = otherHost(early.host);
  fault = {
    tenant: early.id,
    step: 'imported',
    act: () => {
      throw new ControllerStopped();
    },
  };
  const first = await failedMove(early, earlyTarget);
  assert.is(first.code, 'ControllerStopped');
  let controller = await fleet.fleet.reopenController(hook);
  const found = controller.activeMoves().find((move) => move.id === first.move.id);
  assert.is(found?.step, 'imported', 'the journal holds the move at its last step');
  assert.equal(await fleet.servingCopies(early.id), [early.host], 'the source (frozen) is the one serving copy; the target\'s is incoming');
  assert.equal((await controller.recover()).length, 0, 'recover() leaves a move that can still be rolled back to the operator');
  assert.is((await within(controller.resume(first.move.id), 'resume', 120_000)).step, 'done');
  assert.equal(await fleet.servingCopies(early.id), [earlyTarget]);
  assert.equal(await documentIds(early), ['hours', 'tyres']);

  const late = await tenantWithData('Controller Dies Late');
  const lateTarget = otherHost(late.host);
  fault = {
    tenant: late.id,
    step: 'retired',
    act: () => {
      throw new ControllerStopped();
    },
  };
  const second = await failedMove(late, lateTarget);
  assert.is(second.code, 'ControllerStopped');
  assert.equal(await fleet.servingCopies(late.id), [], 'between retire and activate no copy serves (never two)');
  controller = await fleet.fleet.reopenController(hook);
  const rollback = await controller.rollback(second.move.id).then(() => 'rolled back', (error: { code: string }) => error.code);
  assert.is(rollback, 'FLEET_MOVE_CONFLICT', 'a retired source is past the point of no return');
  const recovered = await within(controller.recover(), 'recover', 120_000);
  assert.equal(recovered.map((entry) => [entry.id, entry.step]), [[second.move.id, 'done']]);
  assert.equal(await fleet.servingCopies(late.id), [lateTarget]);
  assert.equal(await documentIds(late), ['hours', 'tyres']);
});

test.run();
