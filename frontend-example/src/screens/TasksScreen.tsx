import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import type { components } from '../api/schema';
import { useApi } from '../auth';
import { ErrorMessage, errorsOf, Field, Spinner, type Failure } from '../components/ui';

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
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<Failure | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setFailure(null);
    try {
      const text = description.trim();
      const { data, error, response } = await api.POST('/api/v1/tasks', {
        body: { title, ...(text ? { description: text } : {}) },
      });
      if (data) {
        setTitle('');
        setDescription('');
        onCreated();
      } else {
        setFailure({ error, response });
      }
    } catch (error) {
      setFailure({ error });
    } finally {
      setBusy(false);
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
  const [busy, setBusy] = useState<string | null>(null);
  const [failure, setFailure] = useState<Failure | null>(null);
  const path = { params: { path: { id: task.id } } };

  async function run(label: string, call: () => Promise<{ data?: Task; error?: unknown; response: Response }>, removed = false) {
    setBusy(label);
    setFailure(null);
    try {
      const { data, error, response } = await call();
      if (response.ok) {
        setEditing(false);
        onChanged(removed ? null : (data ?? task));
      } else {
        setFailure({ error, response });
      }
    } catch (error) {
      setFailure({ error });
    } finally {
      setBusy(null);
    }
  }

  const toggle = () =>
    run('complete', () => api.PATCH('/api/v1/tasks/{id}/complete', { ...path, body: { completed: !task.completed } }));
  const remove = () => run('delete', () => api.DELETE('/api/v1/tasks/{id}', path), true);
  const save = (event: FormEvent) => {
    event.preventDefault();
    void run('save', () => api.PUT('/api/v1/tasks/{id}', { ...path, body: { title, description } }));
  };

  const fields = errorsOf(failure);
  return (
    <li className={`task${task.completed ? ' done' : ''}`} data-task-id={task.id} aria-busy={busy !== null}>
      {editing ? (
        <form onSubmit={save} noValidate aria-label={`Edit ${task.title}`}>
          <Field label="Title" name="title" value={title} maxLength={200} onChange={(e) => setTitle(e.target.value)}
            error={fields.title} />
          <Description value={description} onChange={setDescription} error={fields.description} />
          <ErrorMessage failure={failure} />
          <div className="actions">
            <button type="submit" disabled={busy !== null}>{busy === 'save' ? 'Saving…' : 'Save'}</button>
            <button type="button" className="secondary" disabled={busy !== null} onClick={() => {
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
            <input type="checkbox" id={`task-${task.id}`} checked={task.completed} disabled={busy !== null} onChange={toggle}
              aria-label={task.completed ? `Mark "${task.title}" as not done` : `Mark "${task.title}" as done`} />
            <div>
              <label htmlFor={`task-${task.id}`} className="task-title">{task.title}</label>
              {task.description && <p className="task-description">{task.description}</p>}
            </div>
          </div>
          <div className="actions">
            <button type="button" className="secondary" disabled={busy !== null} onClick={() => {
              setTitle(task.title);
              setDescription(task.description ?? '');
              setEditing(true);
            }}>Edit</button>
            <button type="button" className="danger" disabled={busy !== null} onClick={remove}>
              {busy === 'delete' ? 'Deleting…' : 'Delete'}
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
  const [loading, setLoading] = useState(true);
  const [failure, setFailure] = useState<Failure | null>(null);

  const load = useCallback(async () => {
    setLoading(true);
    try {
      const completed = filter === 'all' ? undefined : filter === 'completed';
      const { data, error, response } = await api.GET('/api/v1/tasks', {
        params: { query: { limit: PAGE_SIZE, offset, ...(completed === undefined ? {} : { completed }) } },
      });
      if (data) {
        setTasks(data);
        setTotal(Number(response.headers.get('X-Total-Count') ?? data.length));
        setFailure(null);
      } else {
        setFailure({ error, response });
      }
    } catch (error) {
      setFailure({ error });
    } finally {
      setLoading(false);
    }
  }, [api, filter, offset]);

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
