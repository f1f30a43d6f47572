// The console in a real browser: Debian's headless Chromium, driven by
// playwright-core. Run by tests/e2e/console_browser.rs against a hub it has
// started and filled with traffic; settings come in the environment:
//
//   HUB            http://127.0.0.1:PORT
//   OFFICE_TOKEN   the data office's token
//   XUHUI_TOKEN    the 徐汇区 service centre's token (a department)
//   TRACED_KEY     a citizen ID the acceptance office looked up
//   SCREENSHOTS    where the pages' screenshots go
//   CHROMIUM       the browser (default /usr/bin/chromium)
//
// Every check throws on failure; the process exits non-zero with the
// failing step's name.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';

const hub = process.env.HUB;
const shots = process.env.SCREENSHOTS;
mkdirSync(shots, { recursive: true });

let step = 'start';
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // As root, without the network Chromium would otherwise reach for.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function api(path, token, body) {
  const r = await fetch(hub + path, {
    method: body ? 'POST' : 'GET',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

async function signIn(token) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'zh-CN' });
  const page = await context.newPage();
  await page.goto(`${hub}/console/needs`);
  // Not signed in: the login page, which brings us back afterwards.
  assert.match(page.url(), /\/console\/login\?next=%2Fconsole%2Fneeds|\/console\/login\?next=\/console\/needs/);
  await page.fill('input[name=token]', token);
  await page.click('button[type=submit]');
  assert.match(page.url(), /\/console\/needs$/);
  return page;
}

const texts = (page, sel) => page.locator(sel).allInnerTexts();

try {
  // ---- the data office --------------------------------------------------------
  step = 'login page';
  {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${hub}/console/login`);
    await shot(page, '01-login');
    await page.fill('input[name=token]', 'tb_not-a-token');
    await page.click('button[type=submit]');
    assert.equal(await page.getByTestId('login-error').innerText(), '令牌无效或已吊销');
    await context.close();
  }

  step = 'office signs in';
  const office = await signIn(process.env.OFFICE_TOKEN);
  assert.match(await office.getByTestId('who').innerText(), /sh-dsjzx/);

  step = 'directory: search and filters';
  await office.goto(`${hub}/console/directory`);
  assert.equal((await texts(office, '[data-testid=dir-row]')).length, 6, 'the five base resources and the sites');
  await shot(office, '02-directory');
  await office.fill('[data-testid=dir-q]', '人口');
  await office.click('[data-testid=dir-search]');
  let rows = await texts(office, '[data-testid=dir-row]');
  assert.equal(rows.length, 1, rows.join('\n'));
  assert.match(rows[0], /101\/000001/);
  await office.goto(`${hub}/console/directory?base_library=legal_entity`);
  rows = await texts(office, '[data-testid=dir-row]');
  assert.deepEqual(rows.map(r => r.split('\t')[0]), ['102/000001']);

  step = 'directory: a resource with its items, versions and freshness';
  await office.goto(`${hub}/console/directory/101/000001`);
  const items = await office.getByTestId('res-items').innerText();
  assert.match(items, /religion/);
  assert.match(items, /不予共享/);
  assert.match(await office.locator('main').innerText(), /按时更新/);
  await shot(office, '03-resource');

  step = 'directory: a refused form changes nothing and says what the API says';
  await office.goto(`${hub}/console/directory/new`);
  await office.fill('input[name=code]', '301/000777');
  await office.fill('input[name=name]', '社区养老服务设施');
  await office.selectOption('select[name=provider]', 'sh-mzj');
  await office.fill('input[name=key_items]', 'facility_id');
  await office.fill('input[name=item_name_0]', 'facility_id');
  await office.fill('input[name=item_label_0]', '设施编号');
  await office.fill('input[name=item_name_1]', 'operator_id');
  await office.fill('input[name=item_label_1]', '运营人身份证号');
  await office.selectOption('select[name=item_sensitivity_1]', 'sensitive');
  await office.selectOption('select[name=item_share_1]', 'none');
  await office.click('[data-testid=form-save]');
  const error = await office.getByTestId('form-error').innerText();
  assert.match(error, /items\[1\]\.legal_basis: required when share_type is none/);
  // What was typed is still there.
  assert.equal(await office.inputValue('input[name=item_label_1]'), '运营人身份证号');
  assert.equal((await api('/v1/catalog/resources/301/000777', process.env.OFFICE_TOKEN)).status, 404,
    'nothing was saved');
  await shot(office, '04-resource-form-error');
  await office.fill('input[name=item_note_1]', '《个人信息保护法》第二十八条');
  await office.click('[data-testid=form-save]');
  assert.match(office.url(), /\/console\/directory\/301\/000777/);
  assert.equal((await api('/v1/catalog/resources/301/000777', process.env.OFFICE_TOKEN)).status, 200);

  step = 'needs: the queue, then an approval that changes the decision';
  await office.goto(`${hub}/console/needs`);
  const queue = await texts(office, '[data-testid=queue-row]');
  assert.ok(queue.some(r => /310115-JYBZ-006/.test(r) && /已超期/.test(r)), 'the late provider is highlighted:\n' + queue.join('\n'));
  const pending = queue.find(r => /310104-LNBT-004/.test(r) && /批量/.test(r));
  assert.ok(pending, 'the district batch need waits for the data office:\n' + queue.join('\n'));
  // Names beside the codes: department, resource, items.
  const late = queue.find(r => /310115-JYBZ-006/.test(r));
  for (const name of ['浦东新区企业服务中心 pd-zwfw', '人口基础信息 101/000001', '公民身份号码 citizen_id']) {
    assert.ok(late.includes(name), `${name} in: ${late}`);
  }
  await shot(office, '05-needs');
  const id = pending.match(/#(\d+)/)[1];
  const ask = { resource: '101/000001', items: ['citizen_id', 'name', 'birth_date'],
                matter: '310104-LNBT-004', mode: 'batch' };
  let explained = await api('/v1/policy/explain', process.env.XUHUI_TOKEN, ask);
  assert.equal(explained.status, 200);
  assert.equal(explained.body.decision.permitted, false, JSON.stringify(explained.body));
  assert.match(explained.body.decision.items[0].reason, /still under review/);
  await office.goto(`${hub}/console/needs/${id}`);
  await shot(office, '06-need');
  await office.click('[data-testid=approve]');
  assert.match(await office.getByTestId('flash').innerText(), new RegExp(`#${id}`));
  explained = await api('/v1/policy/explain', process.env.XUHUI_TOKEN, ask);
  assert.equal(explained.body.decision.permitted, true, JSON.stringify(explained.body));
  assert.equal(explained.body.decision.rule, `need:${id}`);
  // Return flow shows in the decision for the district's bulk need.
  assert.deepEqual(explained.body.decision.row_filters.map(f => f.prefix), ['310104']);

  step = 'needs: rejecting needs a reason, as in the API';
  await office.goto(`${hub}/console/needs/${id}`);
  await office.click('[data-testid=revoke]');
  assert.match(await office.getByTestId('form-error').innerText(), /reason/);
  assert.match(await office.getByTestId('need-status').innerText(), /已批准/);

  step = 'negative list: view, add, a refusal';
  await office.goto(`${hub}/console/lists/negative`);
  const before = (await texts(office, '[data-testid=negative-row]')).length;
  await office.fill('[data-testid=negative-form] input[name=resource]', '102/000001');
  await office.fill('[data-testid=negative-form] input[name=items]', 'address');
  await office.fill('[data-testid=negative-form] input[name=modes]', 'batch');
  await office.click('[data-testid=negative-add]');
  assert.match(await office.getByTestId('form-error').innerText(), /legal_basis/);
  assert.equal((await texts(office, '[data-testid=negative-row]')).length, before, 'nothing half-saved');
  await office.fill('[data-testid=negative-form] input[name=legal_basis]', '《企业信息公示暂行条例》');
  await office.click('[data-testid=negative-add]');
  assert.equal((await texts(office, '[data-testid=negative-row]')).length, before + 1);
  // Edit the new entry: it is replaced, not added.
  await office.locator('[data-testid=negative-edit]').last().click();
  assert.equal(await office.inputValue('[data-testid=negative-form] input[name=items]'), 'address');
  await office.fill('[data-testid=negative-form] input[name=note]', '住所不批量交换');
  await office.click('[data-testid=negative-add]');
  rows = await texts(office, '[data-testid=negative-row]');
  assert.equal(rows.length, before + 1);
  assert.match(rows[rows.length - 1], /住所不批量交换/);
  await shot(office, '07-negative');
  const csv = await office.request.get(`${hub}/console/lists/negative/export?format=csv`);
  assert.equal(csv.status(), 200);
  assert.match(await csv.text(), /企业信息公示暂行条例/);

  step = 'responsibility list and compliance';
  await office.goto(`${hub}/console/lists/responsibilities`);
  assert.equal((await office.getByTestId('responsibilities').locator('tbody tr').count()), 5);
  await shot(office, '08-responsibilities');
  await office.goto(`${hub}/console/compliance`);
  assert.equal(await office.locator('[data-testid=compliance-row]').count(), 5);
  await shot(office, '09-compliance');

  step = 'statistics with charts';
  await office.goto(`${hub}/console/stats`);
  const total = Number(await office.getByTestId('stats-total').innerText());
  assert.ok(total >= 20, `requests counted: ${total}`);
  for (const chart of ['chart-consumers', 'chart-resources', 'chart-denials']) {
    assert.ok(await office.getByTestId(chart).locator('rect').count() >= 1, chart);
  }
  assert.ok(await office.getByTestId('chart-over-time').locator('circle').count() >= 1);
  assert.match(await office.getByTestId('latency').innerText(), /查询/);
  assert.ok(await office.getByTestId('sync-runs').locator('tbody tr').count() >= 2);
  await shot(office, '10-stats');

  step = 'audit trace';
  await office.goto(`${hub}/console/audit`);
  assert.match(await office.getByTestId('chain').innerText(), /完整/);
  await office.fill('[data-testid=audit-key]', process.env.TRACED_KEY);
  await office.click('[data-testid=audit-search]');
  const traced = await texts(office, '[data-testid=audit-row]');
  assert.ok(traced.length >= 1, 'the lookup is traced');
  assert.ok(traced.some(r => /sh-zwfw/.test(r) && /310000-JZZ-001/.test(r) && /released/.test(r)), traced.join('\n'));
  assert.ok(traced.some(r => /xh-zwfw/.test(r) && /no_need/.test(r) && /denied/.test(r)),
    'the refused lookup is traced too:\n' + traced.join('\n'));
  await shot(office, '11-audit');

  step = 'subscriptions';
  await office.goto(`${hub}/console/subscriptions`);
  const subs = await texts(office, '[data-testid=subscription-row]');
  assert.ok(subs.some(r => /residents/.test(r) && /310104/.test(r)), subs.join('\n'));
  await shot(office, '12-subscriptions');

  step = 'English';
  await office.goto(`${hub}/console/directory`);
  await office.click('text=English');
  assert.match(await office.locator('header nav').innerText(), /Directory/);
  assert.match(office.url(), /\/console\/directory/);
  await shot(office, '13-directory-en');
  await office.click('text=中文');

  // ---- a department -------------------------------------------------------------
  step = 'a department sees only what it may';
  const dept = await signIn(process.env.XUHUI_TOKEN);
  const consumers = await texts(dept, '[data-testid=need-consumer]');
  assert.ok(consumers.length >= 3 && consumers.every(c => c === '徐汇区行政服务中心 xh-zwfw'), consumers.join(','));
  assert.equal(await dept.locator('[data-testid=queue-row]').count(), 0);
  assert.doesNotMatch(await dept.locator('header nav').innerText(), /审计追溯/);
  await shot(dept, '14-department-needs');
  await dept.goto(`${hub}/console/directory`);
  assert.equal(await dept.getByTestId('dir-new').count(), 0, 'no create button');
  const forbidden = await dept.goto(`${hub}/console/audit`);
  assert.equal(forbidden.status(), 403);
  const editForm = await dept.goto(`${hub}/console/directory/new`);
  assert.equal(editForm.status(), 403);
  const others = await dept.goto(`${hub}/console/needs/1`);
  assert.equal(others.status(), 404, "another department's need does not exist for it");
  await dept.goto(`${hub}/console/stats`);
  assert.ok(await dept.getByTestId('own-only').count() === 1);
  const ownTotal = Number(await dept.getByTestId('stats-total').innerText());
  assert.ok(ownTotal < total, `own requests only: ${ownTotal} of ${total}`);
  await shot(dept, '15-department-stats');
  await dept.goto(`${hub}/console/subscriptions`);
  const own = await texts(dept, '[data-testid=subscription-row]');
  assert.ok(own.length >= 1 && own.every(r => /xh-zwfw/.test(r)), own.join('\n'));
  await shot(dept, '16-department-subscriptions');

  step = 'a department applies for a need';
  await dept.goto(`${hub}/console/needs/new`);
  await dept.selectOption('select[name=resource]', '102/000001');
  await dept.selectOption('select[name=mode]', 'lookup');
  await dept.fill('input[name=matter]', '310104-QYDJ-010');
  await dept.fill('input[name=items]', 'credit_code,name,status');
  await dept.click('[data-testid=need-submit]');
  assert.match(await dept.getByTestId('form-error').innerText(), /justification/);
  assert.equal(await dept.inputValue('input[name=matter]'), '310104-QYDJ-010');
  await dept.fill('textarea[name=justification]', '企业开办：核对登记状态');
  await dept.click('[data-testid=need-submit]');
  assert.match(await dept.getByTestId('need-status').innerText(), /待/);
  await shot(dept, '17-department-need');

  await browser.close();
  console.log(`console browser test passed; screenshots in ${shots}`);
} catch (e) {
  console.error(`FAILED at step "${step}":`, e);
  await browser.close();
  process.exit(1);
}
