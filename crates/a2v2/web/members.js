// The Members page: who can sign in, with which role; owners and admins invite or add people,
// change roles, reset passwords and remove members.

import { api, enc } from '/assets/api.js';
import {
  applyFieldErrors, busy, button, clear, confirmDialog, copyText, emptyState, errorPanel, errorToast, field,
  formAlert, formatDateTime, h, icon, iconButton, loadingRow, openModal, pageHeader, roleLabel, timeEl, toast, uid,
} from '/assets/ui.js';

// The invite token travels in the fragment: browsers never send it to a server, so it stays
// out of access logs and Referer headers.
export const INVITE_PATH = '/accept-invite';

const ROLE_HELP = {
  owner: 'Owners can do everything, including managing other owners.',
  admin: 'Admins manage agents, API keys and non-owner members, and read the audit log.',
  member: 'Members can view agents, API key lists, contacts and documents.',
};

export async function renderMembers(ctx) {
  const { main, member: me, canManage } = ctx;
  // An admin may only act on admins and members; acting on an owner is refused by the server.
  const assignableRoles = me.role === 'owner' ? ['owner', 'admin', 'member'] : ['admin', 'member'];
  const canActOn = (m) => canManage && (me.role === 'owner' || m.role !== 'owner');
  let members = [];

  const actions = canManage
    ? [
      button('Add member', { iconName: 'plus', id: 'add-member', onClick: () => openAddModal() }),
      button('Invite member', { variant: 'primary', iconName: 'users', id: 'invite-member', onClick: () => openInviteModal() }),
    ]
    : null;
  const card = h('section', { class: 'card', 'aria-labelledby': 'page-heading' }, loadingRow());
  main.append(pageHeader({
    title: 'Members',
    subtitle: 'People who can sign in to this workspace. Owners and admins manage agents and API keys; members can view them.',
    actions,
  }), card);

  async function reload() {
    let body;
    try {
      body = await api('GET', '/api/members');
    } catch (err) {
      if (ctx.isCurrent()) clear(card, errorPanel(err));
      return;
    }
    if (!ctx.isCurrent()) return;
    members = body.data;
    draw();
  }

  function draw() {
    if (members.length === 0) {
      clear(card, emptyState({ iconName: 'users', title: 'No members yet.' }));
      return;
    }
    clear(card, h('table', { class: 'table' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Member'),
        h('th', { scope: 'col' }, 'Role'),
        h('th', { scope: 'col' }, 'Added'),
        canManage ? h('th', { scope: 'col', class: 'col-actions' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
      h('tbody', {}, members.map(memberRow))));
  }

  function memberRow(m) {
    const isMe = m.id === me.id;
    const rowAction = (action) => () => card.querySelector(`tr[data-member-id="${CSS.escape(m.id)}"] [data-action="${action}"]`);
    let actions = null;
    if (canManage) {
      actions = h('td', { class: 'col-actions' }, canActOn(m)
        ? h('div', { class: 'row-actions' },
          button('Change role', { size: 'sm', dataset: { action: 'role' }, onClick: () => openRoleModal(m, rowAction('role')) }),
          button('Reset password', { size: 'sm', dataset: { action: 'password' }, onClick: () => openPasswordModal(m, rowAction('password')) }),
          // Removing yourself would end this very session; someone else has to do it. The
          // empty slot keeps the row's buttons aligned with the others.
          isMe ? h('span', { class: 'btn-slot', 'aria-hidden': 'true' }) : iconButton('trash', 'Remove', {
            title: 'Remove member', variant: 'ghost-danger', dataset: { action: 'remove' },
            onClick: () => confirmRemove(m),
          }))
        : null);
    }
    return h('tr', { dataset: { memberId: m.id } },
      h('td', {}, h('div', { class: 'member-cell' },
        h('span', { class: 'avatar', 'aria-hidden': 'true' }, m.email.slice(0, 1).toUpperCase()),
        h('span', { class: 'cell-strong' }, m.email),
        isMe ? h('span', { class: 'badge badge-neutral' }, 'You') : null)),
      h('td', {}, h('span', { class: `badge badge-role-${m.role}` }, roleLabel(m.role))),
      h('td', {}, timeEl(m.created_at, 'date')),
      actions);
  }

  function roleField(current) {
    const select = h('select', {},
      assignableRoles.map((role) => h('option', { value: role, selected: role === current }, roleLabel(role))));
    const f = field({ label: 'Role', control: select, hint: ROLE_HELP[current] });
    const hint = f.el.querySelector('.field-hint');
    f.control.addEventListener('change', () => { hint.textContent = ROLE_HELP[f.control.value]; });
    return f;
  }

  // Shared frame of the three member forms: fields, an alert for other errors, and a footer.
  // The success toast comes after closing; one raised inside would vanish with the dialog.
  function formModal({ title, fields, submitLabel, successMessage, returnFocus, onSubmit }) {
    const modal = openModal({ title, returnFocus });
    const alertBox = formAlert();
    const formId = uid('member-form');
    const submit = button(submitLabel, { variant: 'primary', type: 'submit', form: formId });
    const form = h('form', { class: 'form', id: formId, novalidate: true }, alertBox.el, Object.values(fields).map((f) => f.el));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      busy(submit, async () => {
        alertBox.clear();
        Object.values(fields).forEach((f) => f.setError(''));
        try {
          await onSubmit();
          await reload();
          modal.close();
          toast(successMessage);
        } catch (err) {
          // A taken email comes back as a conflict, not a field error; it still belongs to Email.
          if (err.code === 'conflict' && fields.email) fields.email.setError(err.message);
          else if (applyFieldErrors(err, fields).length === 0) alertBox.show(err);
        }
      });
    });
    modal.body.append(form);
    modal.footer.append(button('Cancel', { onClick: () => modal.close() }), submit);
    Object.values(fields)[0].control.focus();
  }

  function openAddModal() {
    const fields = {
      email: field({ label: 'Email', control: h('input', { type: 'email', autocomplete: 'off' }) }),
      password: field({
        label: 'Password',
        hint: 'At least 12 characters. Share it with the new member through a secure channel.',
        control: h('input', { type: 'password', autocomplete: 'new-password' }),
      }),
      role: roleField('member'),
    };
    formModal({
      title: 'Add member',
      fields,
      submitLabel: 'Add member',
      successMessage: 'Member added.',
      onSubmit: async () => {
        await api('POST', '/api/members', {
          email: fields.email.control.value.trim(),
          password: fields.password.control.value,
          role: fields.role.control.value,
        });
      },
    });
  }

  // Creates the member with an invite instead of a password, then shows the one-time link.
  function openInviteModal() {
    const modal = openModal({ title: 'Invite member', returnFocus: () => document.getElementById('invite-member') });
    clear(modal.subtitle, h('p', { class: 'step-label' }, 'They choose their own password when they open the invite link.'));
    const fields = {
      email: field({ label: 'Email', control: h('input', { type: 'email', autocomplete: 'off' }) }),
      role: roleField('member'),
    };
    const alertBox = formAlert();
    const formId = uid('invite-form');
    const submit = button('Create invite link', { variant: 'primary', type: 'submit', form: formId });
    const form = h('form', { class: 'form', id: formId, novalidate: true }, alertBox.el, Object.values(fields).map((f) => f.el));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      busy(submit, async () => {
        alertBox.clear();
        Object.values(fields).forEach((f) => f.setError(''));
        let created;
        try {
          created = await api('POST', '/api/members', {
            email: fields.email.control.value.trim(),
            role: fields.role.control.value,
            invite: true,
          });
        } catch (err) {
          if (err.code === 'conflict') fields.email.setError(err.message);
          else if (applyFieldErrors(err, fields).length === 0) alertBox.show(err);
          return;
        }
        showInvite(modal, created);
        reload();
      });
    });
    modal.body.append(form);
    modal.footer.append(button('Cancel', { onClick: () => modal.close() }), submit);
    fields.email.control.focus();
  }

  function showInvite(modal, created) {
    const link = `${location.origin}${INVITE_PATH}#${encodeURIComponent(created.invite_token)}`;
    modal.setTitle('Invite link created');
    clear(modal.subtitle, h('p', { class: 'step-label' },
      'Send this link to ', h('strong', {}, created.email), '. It is shown only once and works once.'));
    const linkId = uid('invite-link');
    const input = h('input', {
      type: 'text', id: linkId, class: 'input-mono secret-input', readonly: true, value: link,
      spellcheck: 'false', autocomplete: 'off',
    });
    input.addEventListener('focus', () => input.select());
    const copy = button('Copy invite link', { variant: 'primary', iconName: 'copy' });
    copy.addEventListener('click', () => busy(copy, async () => {
      try {
        await copyText(link);
        toast('Invite link copied to clipboard');
      } catch (err) {
        errorToast(err);
      }
    }));
    clear(modal.body,
      h('div', { class: 'created-key' },
        h('div', { class: 'created-summary' },
          h('span', { class: 'created-icon' }, icon('check')),
          h('div', {}, h('p', { class: 'cell-strong' }, created.email),
            h('span', { class: `badge badge-role-${created.role}` }, roleLabel(created.role)))),
        h('div', { class: 'field' },
          h('label', { for: linkId, class: 'field-label' }, 'Invite link'),
          h('div', { class: 'secret-row' }, input, copy)),
        created.invite_expires_at
          ? h('p', { class: 'field-hint' }, `The link expires ${formatDateTime(created.invite_expires_at)}.`)
          : null));
    clear(modal.footer, button('Done', { onClick: () => modal.close() }));
    copy.focus();
  }

  function openRoleModal(m, returnFocus) {
    const fields = { role: roleField(m.role) };
    formModal({
      title: `Change role of ${m.email}`,
      fields,
      submitLabel: 'Save role',
      successMessage: 'Role updated.',
      returnFocus,
      onSubmit: async () => {
        await api('PATCH', `/api/members/${enc(m.id)}`, { role: fields.role.control.value });
      },
    });
  }

  function openPasswordModal(m, returnFocus) {
    const fields = {
      password: field({
        label: 'New password',
        hint: 'At least 12 characters. Their sessions end, so they sign in again with it.',
        control: h('input', { type: 'password', autocomplete: 'new-password' }),
      }),
    };
    formModal({
      title: `Reset password of ${m.email}`,
      fields,
      submitLabel: 'Reset password',
      successMessage: 'Password reset.',
      returnFocus,
      onSubmit: async () => {
        await api('PATCH', `/api/members/${enc(m.id)}`, { password: fields.password.control.value });
      },
    });
  }

  function confirmRemove(m) {
    confirmDialog({
      title: 'Remove member?',
      message: [
        h('p', {}, h('strong', {}, m.email), ' will lose access to the workspace and be signed out everywhere at once.'),
      ],
      confirmLabel: 'Remove member',
      returnFocus: () => document.getElementById('add-member'),
      onConfirm: async () => {
        await api('DELETE', `/api/members/${enc(m.id)}`);
        await reload();
      },
      successMessage: 'Member removed.',
    });
  }

  await reload();
}
