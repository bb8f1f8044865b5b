import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import type { components } from '../api/schema';
import { useApi } from '../auth';
import { ErrorMessage, errorsOf, Field, Spinner } from '../components/ui';
import { useAction } from '../hooks/useAction';

type Task = components['schemas']['Task'];
type Filter = 'all' | 'open' | 'completed';

const PAGE_SIZE = 20;

function Description({ value, onChange, error }: { value: string; onChange: (v: string) => void; error?: string }) {
  const id = useId();
  return (
    <div className={`field${error ? ' invalid' : ''}`}>
      <label htmlFor={id}>Description (optional)</label>
      <textarea id={id} name="description" rows={2} maxLength={1000} value={value}
        onChange={(e) => onChange(e.target.value)} aria-invalid={error ? true : undefined} />
      {error && <p className="field-error">{error}</p>}
    </div>
  );
}

function NewTaskForm({ onCreated }: { onCreated: () => void }) {
  const api = useApi();
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const { busy, failure, run } = useAction();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const text = description.trim();
    const created = await run(() => api.POST('/api/v1/tasks', {
      body: { title, ...(text ? { description: text } : {}) },
    }));
    if (created) {
      setTitle('');
      setDescription('');
      onCreated();
    }
  }

  const fields = errorsOf(failure);
  return (
    <form className="new-task" onSubmit={submit} noValidate aria-label="Add a task">
      <Field label="New task" name="title" placeholder="What needs doing?" value={title} maxLength={200}
        onChange={(e) => setTitle(e.target.value)} error={fields.title} />
      <Description value={description} onChange={setDescription} error={fields.description} />
      <ErrorMessage failure={failure} />
      <button type="submit" disabled={busy}>{busy ? 'Adding…' : 'Add task'}</button>
    </form>
  );
}

function TaskItem({ task, onChanged }: { task: Task; onChanged: (task: Task | null) => void }) {
  const api = useApi();
  const [editing, setEditing] = useState(false);
  const [title, setTitle] = useState(task.title);
  const [description, setDescription] = useState(task.description ?? '');
  const { busy, running, failure, setFailure, run } = useAction();
  const path = { params: { path: { id: task.id } } };

  async function change(label: string, call: () => Promise<{ data?: Task; error?: unknown; response: Response }>, removed = false) {
    const outcome = await run(call, { label });
    if (outcome) {
      setEditing(false);
      onChanged(removed ? null : (outcome.data ?? task));
    }
  }

  const toggle = () =>
    change('complete', () => api.PATCH('/api/v1/tasks/{id}/complete', { ...path, body: { completed: !task.completed } }));
  const remove = () => change('delete', () => api.DELETE('/api/v1/tasks/{id}', path), true);
  const save = (event: FormEvent) => {
    event.preventDefault();
    void change('save', () => api.PUT('/api/v1/tasks/{id}', { ...path, body: { title, description } }));
  };

  const fields = errorsOf(failure);
  return (
    <li className={`task${task.completed ? ' done' : ''}`} data-task-id={task.id} aria-busy={busy}>
      {editing ? (
        <form onSubmit={save} noValidate aria-label={`Edit ${task.title}`}>
          <Field label="Title" name="title" value={title} maxLength={200} onChange={(e) => setTitle(e.target.value)}
            error={fields.title} />
          <Description value={description} onChange={setDescription} error={fields.description} />
          <ErrorMessage failure={failure} />
          <div className="actions">
            <button type="submit" disabled={busy}>{running === 'save' ? 'Saving…' : 'Save'}</button>
            <button type="button" className="secondary" disabled={busy} onClick={() => {
              setEditing(false);
              setTitle(task.title);
              setDescription(task.description ?? '');
              setFailure(null);
            }}>Cancel</button>
          </div>
        </form>
      ) : (
        <>
          <div className="task-main">
            <input type="checkbox" id={`task-${task.id}`} checked={task.completed} disabled={busy} onChange={toggle}
              aria-label={task.completed ? `Mark "${task.title}" as not done` : `Mark "${task.title}" as done`} />
            <div>
              <label htmlFor={`task-${task.id}`} className="task-title">{task.title}</label>
              {task.description && <p className="task-description">{task.description}</p>}
            </div>
          </div>
          <div className="actions">
            <button type="button" className="secondary" disabled={busy} onClick={() => {
              setTitle(task.title);
              setDescription(task.description ?? '');
              setEditing(true);
            }}>Edit</button>
            <button type="button" className="danger" disabled={busy} onClick={remove}>
              {running === 'delete' ? 'Deleting…' : 'Delete'}
            </button>
          </div>
          <ErrorMessage failure={failure} />
        </>
      )}
    </li>
  );
}

export function TasksScreen() {
  const api = useApi();
  const [filter, setFilter] = useState<Filter>('all');
  const [offset, setOffset] = useState(0);
  const [tasks, setTasks] = useState<Task[] | null>(null);
  const [total, setTotal] = useState(0);
  const { busy: loading, failure, run: runLoad } = useAction('load'); // loads as it mounts

  const load = useCallback(async () => {
    const completed = filter === 'all' ? undefined : filter === 'completed';
    // The last error stays on screen until this load has succeeded or failed.
    await runLoad(async () => {
      const result = await api.GET('/api/v1/tasks', {
        params: { query: { limit: PAGE_SIZE, offset, ...(completed === undefined ? {} : { completed }) } },
      });
      if (result.data) {
        setTasks(result.data);
        setTotal(Number(result.response.headers.get('X-Total-Count') ?? result.data.length));
      }
      return result;
    }, { label: 'load', keepFailure: true });
  }, [api, filter, offset, runLoad]);

  useEffect(() => {
    void load();
  }, [load]);

  function changed(task: Task, updated: Task | null) {
    // A change can move a task out of the current filter (or page): reload the list.
    if (updated === null || (filter !== 'all' && updated.completed !== (filter === 'completed'))) {
      if (updated === null && tasks?.length === 1 && offset > 0) setOffset(Math.max(0, offset - PAGE_SIZE));
      else void load();
      return;
    }
    setTasks((list) => list?.map((t) => (t.id === task.id ? updated : t)) ?? null);
  }

  const filters: [Filter, string][] = [['all', 'All'], ['open', 'Open'], ['completed', 'Completed']];
  return (
    <section className="card" aria-labelledby="tasks-title">
      <h1 id="tasks-title">Tasks</h1>
      <NewTaskForm onCreated={() => (offset === 0 ? void load() : setOffset(0))} />
      <div className="heading-row">
        <div className="filters" role="group" aria-label="Show">
          {filters.map(([value, label]) => (
            <button key={value} type="button" className={filter === value ? 'selected' : 'secondary'} aria-pressed={filter === value}
              onClick={() => {
                setFilter(value);
                setOffset(0);
              }}>{label}</button>
          ))}
        </div>
        {tasks && <p className="meta" aria-live="polite">{total === 0 ? 'No tasks' : `${total} task${total === 1 ? '' : 's'}`}</p>}
      </div>
      <ErrorMessage failure={failure} />
      {loading && !tasks && <Spinner label="Loading tasks…" />}
      {tasks && tasks.length === 0 && !loading && (
        <p className="empty">{filter === 'all' ? 'Nothing to do yet. Add your first task above.' : `No ${filter} tasks.`}</p>
      )}
      {tasks && tasks.length > 0 && (
        <ul className="tasks" aria-label="Tasks" aria-busy={loading}>
          {tasks.map((task) => (
            <TaskItem key={`${task.id}-${task.updated_at}`} task={task} onChanged={(updated) => changed(task, updated)} />
          ))}
        </ul>
      )}
      {total > PAGE_SIZE && (
        <div className="pager">
          <button type="button" className="secondary" disabled={offset === 0 || loading}
            onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>Previous</button>
          <span>{offset + 1}–{Math.min(offset + PAGE_SIZE, total)} of {total}</span>
          <button type="button" className="secondary" disabled={offset + PAGE_SIZE >= total || loading}
            onClick={() => setOffset(offset + PAGE_SIZE)}>Next</button>
        </div>
      )}
    </section>
  );
}
